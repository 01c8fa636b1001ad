/**
 * `npm run preview`: the panel harness for people without Grafana. Serves the built panel with data from
 * the demo asset model and the device simulator, scored by the core Scorer (no services needed), and
 * refreshes it every second. Open the printed URLs; ?mode=map, ?theme=light.
 */
import { join } from 'node:path';
import { type Reading, Scorer } from 'node-red-contrib-evtwin';
import { DeviceSim, loadAssets } from '../sim';
import { startHarness } from './harness';
import { type FrameDTO, assetFrame } from './panelData';

const REPO = join(__dirname, '..', '..', '..');
const assets = loadAssets(join(REPO, 'provisioning', 'evtwin', 'assets.yaml'));
const start = Date.now() - 300_000;
const faults = [
  { type: 'high_temperature' as const, asset: 'cnc-02', startS: 120, durationS: 100_000 },
  { type: 'pressure_drop' as const, asset: 'pres-01', startS: 200, durationS: 100_000 },
];
const sims = assets.map((a) => new DeviceSim(a, { rate: 1, seed: 11, startTs: start, faults }));
const scorer = new Scorer();
const latest = new Map<
  string,
  { values: Record<string, number>; health: number; score: number; anomaly: boolean }
>();

function advance(): void {
  sims.forEach((sim, i) => {
    const a = assets[i];
    if (!a) return;
    while (sim.nextTs <= Date.now()) {
      const r = sim.next();
      const reading: Reading = { site: a.site, asset: a.id, kind: a.kind, ts: r.ts, metrics: r.values };
      const s = scorer.score(reading);
      if (s.ok)
        latest.set(`${a.site}/${a.id}`, {
          values: r.values,
          health: s.result.health,
          score: s.result.score,
          anomaly: s.result.anomaly,
        });
    }
  });
}

function frames(query: URLSearchParams): FrameDTO[] {
  advance();
  const site = query.get('site');
  const shown = site ? assets.filter((a) => a.site === site) : assets;
  const base = assetFrame(shown);
  const rows = shown.map((a) => latest.get(`${a.site}/${a.id}`));
  const metrics = [...new Set(rows.flatMap((r) => Object.keys(r?.values ?? {})))];
  return [
    {
      ...base,
      fields: [
        ...base.fields,
        { name: 'health', type: 'number', values: rows.map((r) => r?.health ?? null) },
        { name: 'score', type: 'number', values: rows.map((r) => r?.score ?? null) },
        { name: 'anomaly', type: 'boolean', values: rows.map((r) => r?.anomaly ?? null) },
        ...metrics.map((m) => ({
          name: m,
          type: 'number' as const,
          values: rows.map((r) => r?.values[m] ?? null),
        })),
      ],
    },
  ];
}

async function main(): Promise<void> {
  const port = Number(process.env.EVTWIN_PREVIEW_PORT ?? 0);
  const h = await startHarness({ port, frames });
  console.log(
    `EVTwin panel preview (built grafana-panel/dist):\n  3D floor: ${h.url}/preview\n  map:      ${h.url}/preview?mode=map\n  light:    ${h.url}/preview?theme=light\nCtrl-C to stop.`,
  );
  process.on('SIGINT', () => void h.close().then(() => process.exit(0)));
}

void main();
