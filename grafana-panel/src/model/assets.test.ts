import { FieldType, ThresholdsMode, createTheme, toDataFrame } from '@grafana/data';
import { DEFAULT_MAPPING, type FieldMapping } from '../types';
import { buildModel, type BuildOptions } from './assets';
import { formatValue, labelValues } from './format';
import { statusLevel } from './status';

const opts = (o: Partial<BuildOptions> = {}): BuildOptions => ({
  mapping: DEFAULT_MAPPING,
  mode: '3d',
  anomalyScore: 0.8,
  ...o,
});
const theme = createTheme();
const colour = (name: string): string => theme.visualization.getColorByName(name);

/** The evtwin datasource's assets-with-state frame. */
const evtwinAssets = toDataFrame({
  refId: 'A',
  fields: [
    { name: 'site', type: FieldType.string, values: ['plant-a', 'plant-a', 'water-north'] },
    { name: 'asset', type: FieldType.string, values: ['cnc-01', 'cnc-02', 'pres-01'] },
    { name: 'kind', type: FieldType.string, values: ['cnc', 'cnc', 'pressure'] },
    { name: 'name', type: FieldType.string, values: ['CNC mill 1', 'CNC mill 2', 'Junction J1'] },
    { name: 'x', type: FieldType.number, values: [0, 4, null] },
    { name: 'y', type: FieldType.number, values: [0, 0, null] },
    { name: 'z', type: FieldType.number, values: [0, 0, null] },
    { name: 'lat', type: FieldType.number, values: [null, null, 18.523] },
    { name: 'lon', type: FieldType.number, values: [null, null, 73.857] },
    { name: 'health', type: FieldType.number, values: [95, 42, 70] },
    { name: 'status', type: FieldType.string, values: ['running', 'running', 'ok'] },
    { name: 'score', type: FieldType.number, values: [0.1, 0.93, 0.2] },
    { name: 'temperature', type: FieldType.number, values: [51.2, 88.4, null], config: { unit: 'celsius' } },
  ],
});

describe('buildModel', () => {
  it('turns evtwin asset frames into coloured, placed assets', () => {
    const m = buildModel([evtwinAssets], opts());
    expect(m.problems.filter((p) => p.severity === 'error')).toEqual([]);
    expect(m.assets.map((a) => a.key)).toEqual(['plant-a/cnc-01', 'plant-a/cnc-02', 'water-north/pres-01']);
    const [c1, c2, p1] = m.assets;
    expect(c1).toMatchObject({
      color: 'green',
      level: 'ok',
      shape: 'cnc',
      anomaly: false,
      position: { x: 0, y: 0, z: 0 },
    });
    expect(c2).toMatchObject({ color: 'red', level: 'alarm', anomaly: true, colorValue: 42 });
    expect(p1).toMatchObject({
      color: 'orange',
      level: 'warn',
      shape: 'sensor',
      location: { lat: 18.523, lon: 73.857 },
    });
    // pres-01 has no x/y: placed on the grid, and the hint says so.
    expect(p1?.placed).toBe(true);
    expect(m.problems.some((p) => p.severity === 'hint' && p.text.includes('water-north/pres-01'))).toBe(
      true,
    );
    expect(c2?.values.find((v) => v.name === 'temperature')).toEqual({
      name: 'temperature',
      value: 88.4,
      unit: 'celsius',
    });
    expect(m.legend.map((l) => l.color)).toEqual(['red', 'orange', 'green', 'red', 'gray']);
    expect(colour(c1?.color ?? '')).toMatch(/^#/);
  });

  it('reads InfluxQL tables (last_* columns, tag columns, many rows) and joins a positions frame', () => {
    const influx = toDataFrame({
      refId: 'B',
      fields: [
        { name: 'Time', type: FieldType.time, values: [1000, 2000, 1500] },
        { name: 'asset', type: FieldType.string, values: ['cnc-01', 'cnc-01', 'robot-01'] },
        { name: 'last_health', type: FieldType.number, values: [30, 90, 60] },
        { name: 'last_power', type: FieldType.number, values: [3, 4.5, 1.2] },
      ],
    });
    const positions = toDataFrame({
      refId: 'A',
      fields: [
        { name: 'site', type: FieldType.string, values: ['plant-a', 'plant-a'] },
        { name: 'asset', type: FieldType.string, values: ['cnc-01', 'robot-01'] },
        { name: 'kind', type: FieldType.string, values: ['cnc', 'robot'] },
        { name: 'x', type: FieldType.number, values: [0, 0] },
        { name: 'y', type: FieldType.number, values: [0, 6] },
      ],
    });
    const m = buildModel([positions, influx], opts());
    expect(m.assets).toHaveLength(2);
    const cnc = m.assets.find((a) => a.id === 'cnc-01');
    expect(cnc).toMatchObject({
      key: 'plant-a/cnc-01',
      colorValue: 90,
      color: 'green',
      time: 2000,
      placed: false,
    });
    expect(cnc?.values.find((v) => v.name === 'power')?.value).toBe(4.5);
    expect(m.assets.find((a) => a.id === 'robot-01')).toMatchObject({ color: 'orange', shape: 'robot' });
    expect(m.colorField).toBe('last_health');
  });

  it('reads InfluxQL time series with asset labels', () => {
    const series = (metric: string, asset: string, values: Array<number | null>) =>
      toDataFrame({
        name: `telemetry.${metric}`,
        fields: [
          { name: 'Time', type: FieldType.time, values: values.map((_, i) => i * 1000) },
          { name: 'Value', type: FieldType.number, values, labels: { asset, site: 'water-north' } },
        ],
      });
    const m = buildModel(
      [
        series('health', 'flow-01', [80, 20, null]),
        series('flow', 'flow-01', [3, 4, 5]),
        series('health', 'level-01', [99]),
      ],
      opts({ mode: 'map' }),
    );
    expect(m.assets.map((a) => a.key)).toEqual(['water-north/flow-01', 'water-north/level-01']);
    expect(m.assets[0]).toMatchObject({ colorValue: 20, color: 'red' });
    expect(m.assets[0]?.values.find((v) => v.name === 'flow')?.value).toBe(5);
    expect(m.problems.find((p) => p.severity === 'error')?.text).toMatch(/Missing fields: lat, lon/);
  });

  it('honours an explicit mapping and panel thresholds', () => {
    const frame = toDataFrame({
      fields: [
        { name: 'Device', type: FieldType.string, values: ['d1', 'd2'] },
        { name: 'Latitude_deg', type: FieldType.number, values: [1, 2] },
        { name: 'Longitude_deg', type: FieldType.number, values: [3, 4] },
        { name: 'temp', type: FieldType.number, values: [20, 90] },
      ],
    });
    const mapping: FieldMapping = {
      ...DEFAULT_MAPPING,
      asset: 'Device',
      lat: 'Latitude_deg',
      lon: 'Longitude_deg',
      color: 'temp',
    };
    const thresholds = {
      mode: ThresholdsMode.Absolute,
      steps: [
        { value: -Infinity, color: 'green' },
        { value: 75, color: 'red' },
      ],
    };
    const m = buildModel([frame], opts({ mapping, mode: 'map', thresholds }));
    expect(m.problems).toEqual([]);
    expect(m.assets.map((a) => [a.id, a.color, a.location?.lat])).toEqual([
      ['d1', 'green', 1],
      ['d2', 'red', 2],
    ]);
  });

  it('lets a fault status override healthy thresholds, and offline grey', () => {
    const frame = toDataFrame({
      fields: [
        { name: 'asset', type: FieldType.string, values: ['a', 'b', 'c'] },
        { name: 'health', type: FieldType.number, values: [99, 99, null] },
        { name: 'state', type: FieldType.number, values: [3, 0, 2] },
      ],
    });
    const m = buildModel([frame], opts());
    expect(m.assets.map((a) => [a.id, a.level, a.color])).toEqual([
      ['a', 'alarm', 'red'],
      ['b', 'offline', 'gray'],
      ['c', 'ok', 'gray'],
    ]);
  });

  it('explains empty and wrong-shaped data instead of drawing nothing', () => {
    expect(buildModel([], opts()).problems[0]?.text).toMatch(/^No data/);
    expect(buildModel([toDataFrame({ fields: [] })], opts()).problems[0]?.text).toMatch(/^No data/);
    const wrong = toDataFrame({
      fields: [
        { name: 'Time', type: FieldType.time, values: [1, 2] },
        { name: 'Value', type: FieldType.number, values: [1, 2] },
      ],
    });
    const m = buildModel([wrong], opts());
    expect(m.assets).toEqual([]);
    expect(m.problems[0]).toMatchObject({ severity: 'error' });
    expect(m.problems[0]?.text).toMatch(/Missing field: asset.*Time, Value/);
    const noColour = buildModel(
      [toDataFrame({ fields: [{ name: 'asset', type: FieldType.string, values: ['x'] }] })],
      opts(),
    );
    expect(noColour.assets[0]).toMatchObject({ color: 'gray', level: 'unknown', placed: true });
    expect(noColour.problems.map((p) => p.text).join(' ')).toMatch(/No colour field.*No x\/y fields/);
  });
});

describe('status and labels', () => {
  it('maps status words and machine states', () => {
    expect(statusLevel('Faulted')).toBe('alarm');
    expect(statusLevel('SuspendedEV')).toBe('warn');
    expect(statusLevel('Available')).toBe('ok');
    expect(statusLevel(3)).toBe('alarm');
    expect(statusLevel('0')).toBe('offline');
    expect(statusLevel('something')).toBeUndefined();
  });
  it('labels with chosen fields or the colour value', () => {
    const [, c2] = buildModel([evtwinAssets], opts()).assets;
    if (!c2) throw new Error('no asset');
    expect(labelValues(c2, '')).toEqual(['health 42']);
    // Grafana unit ids are shown as Grafana shows them, not as the id.
    expect(labelValues(c2, 'temperature, missing')).toEqual(['temperature 88.4 °C']);
    expect([
      formatValue(8.754, 'kwatt'),
      formatValue(99.1, 'percent'),
      formatValue(3.5, 'suffix:L/s'),
    ]).toEqual(['8.75 kW', '99.1%', '3.50 L/s']);
  });
});
