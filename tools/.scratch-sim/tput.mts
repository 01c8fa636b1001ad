import { startMosquitto } from '../src/services.ts';
import { startSimulator, syntheticAssets } from '../src/sim/index.ts';
import { connectAsync } from 'mqtt';
for (const extra of [[], ['set_tcp_nodelay true']]) {
  const m = await startMosquitto({ extraConfig: extra });
  const sub = await connectAsync(m.url, { protocolVersion: 5 });
  let n = 0;
  sub.on('message', () => n++);
  await sub.subscribeAsync('evtwin/v1/+/+/telemetry', { qos: 1 });
  for (const [qos, cpd, batch] of [[1, false, 1], [0, false, 1], [1, true, 1], [1, false, 10]] as const) {
    n = 0;
    const count = 1000;
    const t0 = performance.now();
    const s = await startSimulator({ url: m.url, assets: syntheticAssets(50), rate: 100, count, seed: 1, qos, batch, connectionPerDevice: cpd, faults: [], speed: Infinity }).done;
    const t1 = performance.now();
    while (n < 50 * count / batch) await new Promise((r) => setTimeout(r, 5));
    const t2 = performance.now();
    console.log(extra.join() || 'default', { qos, cpd, batch, pubPerS: Math.round(s.acked / ((t1 - t0) / 1000)), e2ePerS: Math.round(s.acked / ((t2 - t0) / 1000)), recvMsgs: n });
  }
  await sub.endAsync();
  await m.stop();
}
