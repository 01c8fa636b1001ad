/**
 * Chaos at a small size, all real (Mosquitto, influxd, Node-RED child, publisher child): under steady
 * load through evtwin-mqtt-in → evtwin-auth → evtwin-ingest → evtwin-score → evtwin-influx-out, an
 * InfluxDB outage, a broker restart, a Node-RED restart and a Node-RED crash (SIGKILL: the input
 * acknowledges only what is stored or spooled) lose no reading and store none twice; a full spool
 * refuses readings loudly (done(err), counted by a Catch node), leaves them unacknowledged, and the
 * broker delivers them again once there is room: none lost.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runChaos, type ScenarioResult } from '../src/chaos';

describe('chaos: faults under steady load through the EVTwin pipeline', () => {
  it('loses nothing and stores nothing twice in each scenario', { timeout: 600_000 }, async () => {
    const lines: string[] = [];
    const r = await runChaos({
      devices: 10,
      rate: 100,
      outageSeconds: 4,
      brokerDownSeconds: 2,
      warmSeconds: 2,
      afterSeconds: 3,
      spoolMB: 0.05,
      scenarios: ['influx-outage', 'broker-restart', 'node-red-restart', 'node-red-crash', 'spool-full'],
      learned: false,
      log: (l) => lines.push(l),
    });
    const by = (name: string): ScenarioResult => {
      const s = r.scenarios.find((x) => x.scenario === name);
      assert.ok(s, `scenario ${name} ran:\n${lines.join('\n')}`);
      return s;
    };
    for (const name of ['influx-outage', 'broker-restart', 'node-red-restart', 'node-red-crash']) {
      const s = by(name);
      assert.ok(s.sent > 0, `${name}: load was sent`);
      assert.equal(s.lost, 0, `${name}: ${s.lost} of ${s.sent} readings lost\n${lines.join('\n')}`);
      assert.equal(s.duplicatesStored, 0, `${name}: duplicates stored`);
      assert.equal(s.storedDistinct, s.sent, `${name}: every reading stored once`);
    }
    // A full spool refuses loudly, and the broker keeps what evtwin-mqtt-in did not acknowledge.
    const full = by('spool-full');
    assert.ok(full.refusedThenRedelivered > 0, `spool-full: the quota was reached\n${lines.join('\n')}`);
    assert.equal(full.refusedLoudly, 0, 'spool-full: nothing refused for good');
    assert.equal(full.lost, 0, `spool-full: ${full.lost} of ${full.sent} readings lost\n${lines.join('\n')}`);
    assert.equal(full.duplicatesStored, 0, 'spool-full: duplicates stored');
  });
});
