import { DeviceSim, loadAssets } from '../src/sim';
for (const a of loadAssets().filter((x) => x.kind === 'cnc' || x.kind === 'robot')) {
  const d = new DeviceSim(a, { seed: 1, rate: 1, startTs: Date.parse('2026-03-02T00:00:00Z'), faults: [{ type: 'high_temperature', asset: a.id, startS: 600, durationS: 900 }] });
  const states: Record<number, number> = {}; let maxT = 0;
  for (let i = 0; i < 2400; i++) { const r = d.next(); if (i >= 600) { states[r.values.state as number] = (states[r.values.state as number] ?? 0) + 1; maxT = Math.max(maxT, r.values.temperature as number); } }
  console.log(a.id, JSON.stringify(states), maxT);
}
