import { FieldType } from '@grafana/data';
import { grafanaUnit, toFrames, unitsOf } from './frames';
import type { TwinAsset } from './contract';

describe('frames from API answers', () => {
  it('time series: one frame per asset and metric, typed, with unit, labels and a device link', () => {
    const frames = toFrames({
      refId: 'A',
      queryType: 'timeseries',
      rollup: 'rollup_1m',
      intervalMs: 60_000,
      aggregation: 'mean',
      series: [
        {
          site: 'plant-a',
          line: 'machining',
          asset: 'cnc-01',
          kind: 'cnc',
          metric: 'power',
          unit: 'kW',
          points: [
            [0, 1.5],
            [60_000, null],
          ],
        },
        { site: 'water-north', asset: 'flow-01', metric: 'flow', unit: 'L/s', points: [[0, 3]] },
      ],
    });
    expect(frames).toHaveLength(2);
    const [time, value] = frames[0].fields;
    expect(frames[0].refId).toBe('A');
    expect(time).toMatchObject({ name: 'time', type: FieldType.time, values: [0, 60_000] });
    expect(value).toMatchObject({
      name: 'power',
      type: FieldType.number,
      values: [1.5, null],
      labels: { site: 'plant-a', line: 'machining', asset: 'cnc-01', kind: 'cnc' },
    });
    expect(value.config.unit).toBe('kwatt');
    expect(value.config.links?.[0].url).toBe(
      '/d/evtwin-device?var-site=plant-a&var-asset=cnc-01&${__url_time_range}',
    );
    expect(frames[0].meta?.custom).toEqual({ rollup: 'rollup_1m', intervalMs: 60_000 });
    expect(frames[1].fields[1].config.unit).toBe('suffix:L/s');
  });

  it('latest: one table, units from the catalogue, a link on the asset field', () => {
    const [f] = toFrames(
      {
        refId: 'B',
        queryType: 'latest',
        rows: [
          {
            site: 's',
            asset: 'a',
            ts: 5,
            values: { power: 2, temperature: null },
            health: 90,
            failureRisk: 0.1,
          },
        ],
      },
      { power: 'kW', temperature: '°C' },
    );
    const byName = Object.fromEntries(f.fields.map((x) => [x.name, x]));
    expect(byName.time.type).toBe(FieldType.time);
    expect(byName.power).toMatchObject({ type: FieldType.number, values: [2], config: { unit: 'kwatt' } });
    expect(byName.temperature.config.unit).toBe('celsius');
    expect(byName.health.config.unit).toBe('percent');
    expect(byName.asset.config.links?.[0].url).toContain('var-asset=${__data.fields.asset}');
  });

  it('assets: floor position (x, y, z) and location per asset, empty where the model has none', () => {
    const base = { metrics: { power: 'kW' }, bounds: {} };
    const [f] = toFrames({
      refId: 'F',
      queryType: 'assets',
      assets: [
        {
          ...base,
          ref: 'plant-a/cnc-02',
          id: 'cnc-02',
          site: 'plant-a',
          kind: 'cnc',
          name: 'CNC 2',
          position: { x: 4, y: 0, z: 1.5 },
          state: { lastSeen: 9, health: 42, failureRisk: 0.3, state: 3 },
        },
        {
          ...base,
          ref: 'hub/cp-01',
          id: 'cp-01',
          site: 'hub',
          kind: 'charger',
          name: 'CP 1',
          location: { lat: 52.5, lon: 13.4 },
        },
      ],
    });
    const byName = Object.fromEntries(f.fields.map((x) => [x.name, x]));
    expect([byName.x.values, byName.y.values, byName.z.values]).toEqual([
      [4, null],
      [0, null],
      [1.5, null],
    ]);
    expect(byName.x).toMatchObject({ type: FieldType.number, config: { unit: 'lengthm' } });
    expect([byName.lat.values, byName.lon.values]).toEqual([
      [null, 52.5],
      [null, 13.4],
    ]);
    expect([byName.kind.values, byName.health.values, byName.state.values]).toEqual([
      ['cnc', 'charger'],
      [42, null],
      [3, null],
    ]);
  });

  it('annotations: the fields Grafana reads annotations from', () => {
    const [f] = toFrames({
      refId: 'C',
      queryType: 'annotations',
      annotations: [{ time: 7, title: 'power_spike', text: 'spike', tags: ['power_spike', 's'], site: 's' }],
    });
    expect(f.fields.map((x) => x.name)).toEqual([
      'time',
      'timeEnd',
      'title',
      'text',
      'tags',
      'site',
      'asset',
    ]);
    expect(f.fields[4].values[0]).toEqual(['power_spike', 's']);
  });

  it('mixed record fields keep their types (sessions)', () => {
    const [f] = toFrames({
      refId: 'D',
      queryType: 'sessions',
      sessions: [
        { ts: 1, site: 's', asset: 'cp', tags: {}, fields: { energy_kwh: 2, id_tag: 'T', ok: true } },
      ],
    });
    const types = Object.fromEntries(f.fields.map((x) => [x.name, x.type]));
    expect(types).toMatchObject({ energy_kwh: 'number', id_tag: 'string', ok: 'boolean', time: 'time' });
  });

  it('a failed query gives no frame', () => {
    expect(toFrames({ refId: 'E', queryType: 'events', error: 'no', status: 403 })).toEqual([]);
  });

  it('units', () => {
    expect([grafanaUnit('kWh'), grafanaUnit(''), grafanaUnit('NTU')]).toEqual([
      'kwatth',
      undefined,
      'suffix:NTU',
    ]);
    const a = { metrics: { power: 'kW' } } as unknown as TwinAsset;
    expect(unitsOf([a])).toEqual({ power: 'kW' });
  });
});
