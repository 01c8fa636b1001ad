// The simulator service of docker compose: every demo asset publishes once a second, each with its own
// Mosquitto login ("<site>/<asset>" and its token, as the ACL requires) and the token as MQTT v5
// user property for evtwin-auth.
'use strict';
const { readFileSync } = require('node:fs');
const { parseAssetModel } = require('node-red-contrib-evtwin');
const { startSimulator } = require('/src/tools/dist/sim/index.js');

const assetsFile = process.env.EVTWIN_ASSETS || '/provisioning/evtwin/assets.yaml';
const assets = parseAssetModel(readFileSync(assetsFile, 'utf8'), assetsFile).assets;
const tokens = JSON.parse(readFileSync('/data/registry/device-tokens.json', 'utf8'));
const sim = startSimulator({
  url: process.env.EVTWIN_MQTT_URL || 'mqtt://mosquitto:1883',
  assets,
  rate: Number(process.env.EVTWIN_SIM_RATE || 1),
  seed: 42,
  qos: 1,
  batch: 1,
  connectionPerDevice: true,
  brokerLogin: true,
  tokens,
  faults: [],
  protocolVersion: 5,
});
console.log(`simulator: ${assets.length} devices`);
sim.done.then(
  () => process.exit(0),
  (err) => {
    console.error(`simulator: ${err.message}`);
    process.exit(1);
  },
);
process.on('SIGTERM', () => void sim.stop().then(() => process.exit(0)));
