/**
 * The simulator's pure parts: signal models, faults and their labels, timestamps, synthetic fleets.
 * No broker here; sim-mqtt.test.ts sends the same readings through a real Mosquitto.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { METRICS_BY_KIND, parseAssetModel, type Asset, type AssetKind } from 'node-red-contrib-evtwin';
import {
  DeviceSim,
  FAULT_KINDS,
  FAULT_TYPES,
  FaultSpecError,
  Rng,
  assetsToModelText,
  diurnalDemand,
  loadAssets,
  localHour,
  parseFaultSpec,
  resolveFaults,
  syntheticAssets,
  type FaultLabel,
  type FaultSpec,
  type FaultType,
  type SimReading,
} from '../src/sim';

const START = Date.parse('2026-03-02T00:00:00Z');
const demo = loadAssets();
const asset = (id: string): Asset => {
  const a = demo.find((x) => x.id === id);
  assert.ok(a, `demo asset ${id}`);
  return a;
};

function run(
  a: Asset,
  n: number,
  opts: { seed?: number; rate?: number; faults?: FaultSpec[]; faultRate?: number; startTs?: number } = {},
): { readings: SimReading[]; labels: FaultLabel[] } {
  const labels: FaultLabel[] = [];
  const sim = new DeviceSim(a, {
    seed: opts.seed ?? 1,
    rate: opts.rate ?? 1,
    startTs: opts.startTs ?? START,
    faults: opts.faults ?? [],
    ...(opts.faultRate !== undefined ? { faultRate: opts.faultRate } : {}),
    onLabel: (l) => labels.push(l),
  });
  const readings: SimReading[] = [];
  for (let i = 0; i < n; i++) readings.push(sim.next());
  return { readings, labels };
}

const series = (rs: SimReading[], metric: string): number[] =>
  rs.map((r) => r.values[metric]).filter((v): v is number => v !== undefined);
const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;
const within = (rs: SimReading[], from: number, to: number): SimReading[] =>
  rs.filter((r) => r.ts >= from && r.ts < to);

describe('PRNG', () => {
  it('repeats a stream for the same seed and parts, and differs otherwise', () => {
    const draw = (r: Rng): number[] => Array.from({ length: 50 }, () => r.next());
    assert.deepEqual(draw(new Rng(7, 'a')), draw(new Rng(7, 'a')));
    assert.notDeepEqual(draw(new Rng(7, 'a')), draw(new Rng(8, 'a')));
    assert.notDeepEqual(draw(new Rng(7, 'a')), draw(new Rng(7, 'b')));
    const r = new Rng(3, 'stats');
    const xs = Array.from({ length: 20_000 }, () => r.next());
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    assert.ok(Math.abs(mean(xs) - 0.5) < 0.01, `uniform mean ${mean(xs)}`);
    const zs = Array.from({ length: 20_000 }, () => r.normal());
    const m = mean(zs);
    const sd = Math.sqrt(mean(zs.map((z) => (z - m) ** 2)));
    assert.ok(Math.abs(m) < 0.03 && Math.abs(sd - 1) < 0.03, `normal mean ${m} sd ${sd}`);
  });
});

describe('device readings', () => {
  it('are deterministic for a seed and differ with another seed, for every kind', () => {
    for (const a of demo) {
      const one = run(a, 300, { seed: 11 }).readings;
      assert.deepEqual(run(a, 300, { seed: 11 }).readings, one, `${a.id} repeats`);
      assert.notDeepEqual(run(a, 300, { seed: 12 }).readings, one, `${a.id} differs with another seed`);
    }
  });

  it("use the core's metric names for the kind, each reading complete (cycle_time only when a cycle ends)", () => {
    for (const a of demo) {
      const catalogue = Object.keys(METRICS_BY_KIND[a.kind]);
      const { readings } = run(a, 3600);
      for (const r of readings) {
        for (const [k, v] of Object.entries(r.values)) {
          assert.ok(catalogue.includes(k), `${a.id}: ${k} is not a ${a.kind} metric`);
          assert.ok(Number.isFinite(v), `${a.id}: ${k} = ${v}`);
        }
        for (const k of catalogue) if (k !== 'cycle_time') assert.ok(k in r.values, `${a.id} lacks ${k}`);
      }
      if (a.kind === 'cnc' || a.kind === 'robot') {
        const cycles = series(readings, 'cycle_time');
        assert.ok(cycles.length >= 10, `${a.id}: ${cycles.length} completed cycles in an hour`);
      }
    }
  });

  it('have strictly increasing timestamps and consecutive seq at any rate', () => {
    for (const rate of [1000, 333.3, 7, 1, 0.1]) {
      const { readings } = run(asset('cnc-01'), 2000, { rate });
      readings.forEach((r, i) => {
        assert.equal(r.seq, i + 1);
        if (i > 0)
          assert.ok(
            r.ts > (readings[i - 1] as SimReading).ts,
            `rate ${rate}: ts ${r.ts} after ${readings[i - 1]?.ts}`,
          );
      });
      const spanS = ((readings.at(-1) as SimReading).ts - (readings[0] as SimReading).ts) / 1000;
      assert.ok(Math.abs(spanS - 1999 / rate) <= 0.001 + 1 / rate / 2, `rate ${rate}: span ${spanS}`);
      assert.ok((readings[0] as SimReading).ts >= START && (readings[0] as SimReading).ts < START + 1000);
    }
  });

  it('stay in plausible ranges over a simulated day without faults', () => {
    const day = (id: string): SimReading[] => run(asset(id), 8640, { rate: 0.1 }).readings;
    for (const id of ['cnc-01', 'cnc-02', 'cnc-03']) {
      const rs = day(id);
      const power = series(rs, 'power');
      const temp = series(rs, 'temperature');
      assert.ok(
        Math.min(...power) >= 0 && Math.max(...power) < 20,
        `${id} power ${Math.min(...power)}..${Math.max(...power)}`,
      );
      assert.ok(
        Math.min(...temp) > 15 && Math.max(...temp) < 75,
        `${id} temperature stays under its bound of 75 °C`,
      );
      const v = series(rs, 'voltage');
      assert.ok(Math.min(...v) > 370 && Math.max(...v) < 420, `${id} voltage`);
      assert.deepEqual([...new Set(series(rs, 'state'))].sort(), [0, 1, 2], `${id} is off, idle and running`);
      const running = rs.filter((r) => r.values.state === 2);
      const idle = rs.filter((r) => r.values.state === 1);
      assert.ok(mean(series(running, 'power')) > 3 * mean(series(idle, 'power')), `${id} power follows load`);
      assert.ok(
        mean(series(running, 'vibration')) > 2 * mean(series(idle, 'vibration')),
        `${id} vibration rises with speed`,
      );
      assert.ok(idle.every((r) => r.values.spindle_speed === 0));
      assert.ok(Math.max(...series(rs, 'spindle_speed')) <= 12500);
    }
    // Water: demand peaks in the morning; pressure falls as demand rises; sensors respect the model's bounds.
    const byLocalHour = (rs: SimReading[], metric: string, lon: number, from: number, to: number): number =>
      mean(
        rs
          .filter((r) => localHour(r.ts, lon) >= from && localHour(r.ts, lon) < to)
          .map((r) => r.values[metric] as number),
      );
    const flow = day('flow-01');
    const lon = asset('flow-01').location?.lon ?? 0;
    assert.ok(
      byLocalHour(flow, 'flow', lon, 7, 9) > 2 * byLocalHour(flow, 'flow', lon, 2, 4),
      'morning flow over night flow',
    );
    const pres = day('pres-01');
    assert.ok(
      byLocalHour(pres, 'pressure', lon, 7, 9) < byLocalHour(pres, 'pressure', lon, 2, 4) - 0.5,
      'pressure dips at peak',
    );
    const p = series(pres, 'pressure');
    assert.ok(
      Math.min(...p) >= 1.5 && Math.max(...p) <= 6,
      `pressure ${Math.min(...p)}..${Math.max(...p)} within bounds`,
    );
    const cl = series(day('chlor-01'), 'chlorine');
    assert.ok(
      Math.min(...cl) >= 0.2 && Math.max(...cl) <= 1,
      `chlorine ${Math.min(...cl)}..${Math.max(...cl)}`,
    );
    const level = series(day('level-01'), 'level');
    assert.ok(
      Math.min(...level) >= 0 && Math.max(...level) <= 6.5 && Math.max(...level) - Math.min(...level) > 1,
      'tank cycles',
    );
    const turb = series(day('turb-01'), 'turbidity');
    assert.ok(Math.min(...turb) > 0 && Math.max(...turb) < 15);
    assert.equal(diurnalDemand(3) < diurnalDemand(7.5), true);
  });

  it('keep a charger energy register monotonic, rising with the power delivered', () => {
    for (const id of ['cp-01', 'cp-02', 'cp-03']) {
      const { readings } = run(asset(id), 8640, { rate: 0.1, faultRate: 0.05 });
      const energy = series(readings, 'energy');
      for (let i = 1; i < energy.length; i++)
        assert.ok((energy[i] as number) >= (energy[i - 1] as number), `${id} energy`);
      const delivered = (energy.at(-1) as number) - (energy[0] as number);
      const integrated = readings.reduce((s, r) => s + ((r.values.power as number) * 10) / 3600, 0);
      assert.ok(delivered > 10, `${id} delivered ${delivered} kWh in a day`);
      assert.ok(
        Math.abs(delivered - integrated) / integrated < 0.05,
        `${id}: register ${delivered} vs ∫P ${integrated}`,
      );
      const idle = readings.filter((r) => r.values.power === 0);
      assert.ok(idle.length > 0 && idle.every((r) => r.values.current === 0), `${id} has idle time`);
    }
  });
});

describe('faults', () => {
  const cases: { type: FaultType; id: string; effect: (during: SimReading[], base: SimReading[]) => void }[] =
    [
      {
        type: 'power_spike',
        id: 'cnc-01',
        effect: (d, b) => assert.ok(mean(series(d, 'power')) > 1.5 * mean(series(b, 'power'))),
      },
      {
        type: 'voltage_drop',
        id: 'robot-01',
        effect: (d, b) => {
          assert.ok(mean(series(d, 'voltage')) < mean(series(b, 'voltage')) - 25);
          assert.ok(mean(series(d, 'current')) > mean(series(b, 'current')), 'current rises as voltage sags');
        },
      },
      {
        type: 'high_temperature',
        id: 'cnc-02',
        effect: (d, b) => {
          assert.ok(Math.max(...series(d, 'temperature')) > 75, 'crosses the asset bound');
          assert.ok(Math.max(...series(b, 'temperature')) < 75);
        },
      },
      {
        type: 'idle_power_waste',
        id: 'cnc-03',
        effect: (d, b) => {
          const idle = (rs: SimReading[]): number[] =>
            series(
              rs.filter((r) => r.values.state === 1),
              'power',
            );
          assert.ok(idle(d).length > 60, 'the machine waits');
          assert.ok(mean(idle(d)) > 2 * mean(idle(b)), `idle power ${mean(idle(d))} vs ${mean(idle(b))}`);
        },
      },
      {
        type: 'vibration',
        id: 'robot-02',
        effect: (d, b) => assert.ok(mean(series(d, 'vibration')) > 2 * mean(series(b, 'vibration'))),
      },
      {
        type: 'cycle_time_drift',
        id: 'cnc-01',
        effect: (d, b) => assert.ok(mean(series(d, 'cycle_time')) > 1.15 * mean(series(b, 'cycle_time'))),
      },
      {
        type: 'leak',
        id: 'flow-01',
        effect: (d, b) => assert.ok(mean(series(d, 'flow')) > 1.1 * mean(series(b, 'flow'))),
      },
      {
        type: 'leak',
        id: 'pres-01',
        effect: (d, b) => assert.ok(mean(series(d, 'pressure')) < mean(series(b, 'pressure')) - 0.3),
      },
      {
        type: 'leak',
        id: 'chlor-01',
        effect: (d, b) => assert.ok(mean(series(d, 'chlorine')) < mean(series(b, 'chlorine')) - 0.1),
      },
      {
        type: 'pressure_drop',
        id: 'pres-01',
        effect: (d, b) => assert.ok(mean(series(d, 'pressure')) < 0.7 * mean(series(b, 'pressure'))),
      },
      {
        type: 'power_spike',
        id: 'cp-03',
        effect: (d, b) => assert.ok(mean(series(d, 'power')) > mean(series(b, 'power')) + 5),
      },
      {
        type: 'high_temperature',
        id: 'cp-01',
        effect: (d, b) => assert.ok(mean(series(d, 'temperature')) > mean(series(b, 'temperature')) + 15),
      },
    ];
  for (const c of cases) {
    it(`${c.type} on ${c.id}: labelled once, leaves the signal before it alone, and shows`, () => {
      const a = asset(c.id);
      const spec: FaultSpec = { type: c.type, asset: c.id, startS: 600, durationS: 900 };
      const base = run(a, 1800).readings;
      const { readings, labels } = run(a, 1800, { faults: [spec] });
      assert.deepEqual(labels, [
        {
          site: a.site,
          asset: a.id,
          kind: a.kind,
          type: c.type,
          start: START + 600_000,
          end: START + 1_500_000,
          severity: 1,
          source: 'scheduled',
        },
      ]);
      assert.deepEqual(within(readings, 0, START + 600_000), within(base, 0, START + 600_000));
      // Judge the second half of the window: faults ramp in, like the physics they imitate.
      c.effect(
        within(readings, START + 1_050_000, START + 1_500_000),
        within(base, START + 1_050_000, START + 1_500_000),
      );
    });
  }

  it('random faults are seeded, labelled, of a fitting type and never overlap on a device', () => {
    for (const a of demo) {
      const one = run(a, 7200, { faultRate: 0.2, seed: 5 });
      assert.deepEqual(run(a, 7200, { faultRate: 0.2, seed: 5 }).labels, one.labels, `${a.id} labels repeat`);
      assert.ok(one.labels.length >= 3, `${a.id}: ${one.labels.length} faults in 2 h at 0.2/min`);
      one.labels.forEach((l, i) => {
        assert.ok(FAULT_KINDS[l.type].includes(a.kind), `${l.type} on ${a.kind}`);
        assert.equal(l.source, 'random');
        assert.ok(l.end - l.start >= 30_000 && l.end - l.start <= 300_000);
        if (i > 0) assert.ok(l.start >= (one.labels[i - 1] as FaultLabel).end, 'no overlap');
      });
    }
  });

  it('a fault given to every device hits only the asset it names (one fleet-wide list is safe)', () => {
    const spec: FaultSpec = { type: 'high_temperature', asset: 'cnc-02', startS: 0, durationS: 600 };
    for (const id of ['cnc-01', 'cnc-02']) {
      const hot = run(asset(id), 600, { faults: [spec] });
      const base = run(asset(id), 600).readings;
      const temp = (r: SimReading[]): number => Math.max(...r.map((x) => x.values.temperature ?? 0));
      if (id === 'cnc-02') {
        assert.equal(hot.labels.length, 1);
        assert.ok(temp(hot.readings) > temp(base) + 20, `${temp(hot.readings)} vs ${temp(base)}`);
      } else {
        assert.deepEqual(hot.labels, []);
        assert.deepEqual(hot.readings, base);
      }
    }
  });

  it('parses fault specs and refuses bad ones with a reason', () => {
    assert.deepEqual(parseFaultSpec('leak:flow-01:60:120'), {
      type: 'leak',
      asset: 'flow-01',
      startS: 60,
      durationS: 120,
    });
    assert.deepEqual(parseFaultSpec('vibration:plant-a/cnc-01:0:5.5:0.5'), {
      type: 'vibration',
      asset: 'plant-a/cnc-01',
      startS: 0,
      durationS: 5.5,
      severity: 0.5,
    });
    for (const [bad, why] of [
      ['leak:flow-01:60', /expected TYPE:ASSET/],
      ['flood:flow-01:60:10', /unknown type "flood"/],
      ['leak:flow-01:-1:10', /START_S/],
      ['leak:flow-01:1:0', /DURATION_S/],
      ['leak:flow-01:1:abc', /DURATION_S/],
      ['leak:flow-01:1:10:2', /SEVERITY/],
      ['leak::1:10', /ASSET is empty/],
    ] as const) {
      assert.throws(
        () => parseFaultSpec(bad),
        (e: Error) => e instanceof FaultSpecError && why.test(e.message),
        bad,
      );
    }
    assert.throws(
      () => resolveFaults([parseFaultSpec('leak:cnc-01:0:10')], demo),
      /a cnc asset cannot have it/,
    );
    assert.throws(() => resolveFaults([parseFaultSpec('vibration:nope:0:10')], demo), /no such asset/);
    const twoSites = [
      ...syntheticAssets(2, ['cnc']),
      { ...(syntheticAssets(1, ['cnc'])[0] as Asset), site: 'other' },
    ];
    assert.throws(
      () => resolveFaults([parseFaultSpec('vibration:cnc-0001:0:10')], twoSites),
      /several sites/,
    );
    const all = resolveFaults([parseFaultSpec('leak:*:0:10')], demo);
    assert.deepEqual(
      [...all.keys()].sort(),
      demo
        .filter((a) => FAULT_KINDS.leak.includes(a.kind))
        .map((a) => `${a.site}/${a.id}`)
        .sort(),
    );
    for (const t of FAULT_TYPES) assert.ok(FAULT_KINDS[t].length > 0);
  });
});

describe('synthetic fleets', () => {
  it('spread N devices over the kinds with ids like cnc-0001 and load back as an asset model', () => {
    const kinds: AssetKind[] = ['cnc', 'flow', 'charger'];
    const fleet = syntheticAssets(10, kinds, 3);
    assert.equal(fleet.length, 10);
    assert.deepEqual(
      fleet.slice(0, 4).map((a) => `${a.site}/${a.id}`),
      ['sim/cnc-0001', 'sim/flow-0001', 'sim/charger-0001', 'sim/cnc-0002'],
    );
    assert.equal(new Set(fleet.map((a) => a.id)).size, 10);
    assert.ok(
      fleet.filter((a) => a.kind !== 'cnc').every((a) => a.location),
      'water sensors and chargers have lat/lon',
    );
    assert.deepEqual(syntheticAssets(10, kinds, 3), fleet);
    assert.deepEqual(parseAssetModel(assetsToModelText(fleet)).assets, fleet);
    assert.deepEqual(parseAssetModel(assetsToModelText(demo)).assets, demo);
  });
});
