import { startMosquitto } from '/work/main/tools/src/services.ts';
import { startSimulator, syntheticAssets } from '/work/main/tools/src/sim/index.ts';
import { decodeTelemetry } from 'node-red-contrib-evtwin';
import { connectAsync } from 'mqtt';
const m = await startMosquitto();
const sub = await connectAsync(m.url, { protocolVersion: 5 });
let msgs = 0, items = 0, rej = 0;
sub.on('message', (_t, p) => { msgs++; const r = decodeTelemetry(p, Date.now()); items += r.items.length; rej += r.rejections.length; });
await sub.subscribeAsync('evtwin/v1/+/+/telemetry', { qos: 1 });
for (const [qos, cpd, batch] of [[1, false, 1], [0, false, 1], [1, true, 1], [1, false, 10]] as const) {
  msgs = 0; items = 0; rej = 0;
  const count = 400;
  const t0 = performance.now();
  const sim = startSimulator({ url: m.url, assets: syntheticAssets(50), rate: 10, count, seed: 1, qos, batch, connectionPerDevice: cpd, faults: [], speed: Infinity });
  const s = await sim.done;
  const pubS = (performance.now() - t0) / 1000;
  const deadline = Date.now() + 20000;
  while (items < 50 * count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const allS = (performance.now() - t0) / 1000;
  console.log({ qos, cpd, batch, acked: s.acked, msgsAcked: s.messagesAcked, recvMsgs: msgs, items, rej, pubRate: Math.round(s.acked / pubS), endToEnd: Math.round(items / allS), errors: s.errors, conns: s.connections });
}
await sub.endAsync();
await m.stop();
