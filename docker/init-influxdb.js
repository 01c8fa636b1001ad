// One-shot job of docker compose (service influxdb-init): retention policies and continuous queries of
// provisioning/influxdb/evtwin.yaml, applied with the admin login (idempotent, like `npm start`).
'use strict';
const { provisionInfluxDB, describeProvisioning } = require('/src/tools/dist/stack/influxProvision.js');

provisionInfluxDB(process.env.EVTWIN_INFLUX_URL, '/provisioning/influxdb/evtwin.yaml', {
  username: process.env.INFLUXDB_ADMIN_USER,
  password: process.env.INFLUXDB_ADMIN_PASSWORD,
}).then(
  (report) => console.log(`influxdb: ${describeProvisioning(report)}`),
  (err) => {
    console.error(`influxdb: ${err.message}`);
    process.exit(1);
  },
);
