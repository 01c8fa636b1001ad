// One-shot job of docker compose (service security-init), run in the tools image:
//  1. registers the demo assets of provisioning/evtwin/assets.yaml in the registry volume once (their
//     tokens go to device-tokens.json, 0600, for the simulator), as `npm start` does;
//  2. writes Mosquitto's passwd and ACL from the registry with the code `npm start` uses
//     (writeStackBrokerFiles: devices, the flow's service user, the legacy jjm/ topics);
//  3. writes Node-RED's flow credentials as ${VAR} references (broker and InfluxDB logins), encrypted
//     with EVTWIN_CREDENTIAL_SECRET, into the node-red volume, and copies flows/ there when absent.
'use strict';
const { copyFileSync, existsSync, readdirSync, readFileSync, chownSync, mkdirSync } = require('node:fs');
const { join } = require('node:path');
const { parseAssetModel } = require('node-red-contrib-evtwin');
const {
  provisionSecurity,
  writeFlowCredentials,
  writeStackBrokerFiles,
} = require('/src/tools/dist/stack/security.js');

const need = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (see .env.example)`);
  return v;
};
const assetsFile = process.env.EVTWIN_ASSETS || '/provisioning/evtwin/assets.yaml';
const assets = parseAssetModel(readFileSync(assetsFile, 'utf8'), assetsFile).assets;
const servicePassword = need('EVTWIN_MQTT_PASSWORD');
need('EVTWIN_JWT_SECRET');
const sec = provisionSecurity('/data/registry', assets);
console.log(`registry: ${sec.registered} newly registered, ${Object.keys(sec.tokens).length} device tokens`);
const broker = writeStackBrokerFiles(sec.registryFile, '/data/mosquitto', servicePassword);
console.log(
  `mosquitto: ${broker.passwd} and ${broker.acl} for ${broker.devices} devices and ${sec.serviceUser}`,
);
if (broker.missing.length) console.error(`warning: no broker password for ${broker.missing.join(', ')}`);

const userDir = '/data/node-red';
mkdirSync(userDir, { recursive: true });
for (const f of readdirSync('/flows').filter((f) => f.endsWith('.json')))
  if (!existsSync(join(userDir, f))) copyFileSync(join('/flows', f), join(userDir, f));
writeFlowCredentials(userDir, join(userDir, 'evtwin-stack.json'), need('EVTWIN_CREDENTIAL_SECRET'), {
  'evtwin-stack-influx': { username: '${EVTWIN_INFLUX_USER}', password: '${EVTWIN_INFLUX_PASSWORD}' },
  'evtwin-stack-api': { serviceToken: '${EVTWIN_SERVICE_TOKEN}' },
});
// The Node-RED image runs as node-red (uid 1000); its user dir and the registry must be its own.
for (const dir of [userDir, '/data/registry']) {
  chownSync(dir, 1000, 1000);
  for (const f of readdirSync(dir)) chownSync(join(dir, f), 1000, 1000);
}
console.log('node-red: flows and credentials in place');
