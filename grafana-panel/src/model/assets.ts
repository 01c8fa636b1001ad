/**
 * Frames → asset view models: the pure half of the panel. Rows of every frame are joined by asset
 * (`site/asset`, or the bare id when a frame has no site), the newest row of an asset wins, numeric fields
 * become its values, and the colour comes from thresholds (status.ts). Renderers only draw the result.
 *
 * Accepted shapes:
 *  - tables with an asset column (the evtwin datasource's assets / latest frames; InfluxQL table format
 *    with GROUP BY tags), one row per asset or many (the newest wins);
 *  - time series whose value fields carry an `asset` label (InfluxQL time series): the last non-null value.
 */
import { type DataFrame, type Field, FieldType, type ThresholdsConfig } from '@grafana/data';
import { type FieldMapping, type FieldRole, type Shape, type TwinMode } from '../types';
import {
  ROLE_ALIASES,
  assignRoles,
  fieldLabel,
  normalise,
  toNumber,
  toText,
  type RoleFields,
} from './fields';
import {
  DEFAULT_THRESHOLDS,
  type Level,
  type LegendItem,
  colourOf,
  legendItems,
  statusLevel,
} from './status';

export interface AssetValue {
  name: string;
  value: number;
  unit?: string;
}

export interface AssetView {
  /** `site/asset`, or the asset id when no site is known: unique, used as the variable's `ref`. */
  key: string;
  id: string;
  site?: string;
  name: string;
  kind: string;
  shape: Shape;
  position?: { x: number; y: number; z: number };
  /** True when the position was made up (grid) because the data had none. */
  placed: boolean;
  location?: { lat: number; lon: number };
  /** The colour field's value (health by default). */
  colorValue: number | null;
  colorField?: string;
  /** Named or hex colour; resolve with theme.visualization.getColorByName. */
  color: string;
  level: Level;
  status?: string;
  score: number | null;
  anomaly: boolean;
  time?: number;
  values: AssetValue[];
  /** Where the asset's row came from, for data links (first frame with an asset column). */
  source?: { frame: DataFrame; row: number };
}

export interface Problem {
  severity: 'error' | 'hint';
  text: string;
}

export interface TwinModel {
  assets: AssetView[];
  legend: LegendItem[];
  problems: Problem[];
  /** The field that drives colour, as found. */
  colorField?: string;
}

export interface BuildOptions {
  mapping: FieldMapping;
  mode: TwinMode;
  anomalyScore: number;
  /** Panel-level thresholds (fieldConfig.defaults); a colour field's own config wins. */
  thresholds?: ThresholdsConfig;
}

const SHAPE_OF_KIND: Record<string, Shape> = {
  cnc: 'cnc',
  mill: 'cnc',
  lathe: 'cnc',
  robot: 'robot',
  flow: 'sensor',
  pressure: 'sensor',
  level: 'sensor',
  chlorine: 'sensor',
  turbidity: 'sensor',
  sensor: 'sensor',
  tank: 'sensor',
  charger: 'charger',
  cp: 'charger',
};
export const shapeOf = (kind: string): Shape => SHAPE_OF_KIND[kind.toLowerCase()] ?? 'generic';

interface Acc {
  id: string;
  site?: string;
  name?: string;
  kind?: string;
  x?: number;
  y?: number;
  z?: number;
  lat?: number;
  lon?: number;
  color?: { value: number | null; field: Field; time: number; name: string };
  status?: string | number;
  score?: number;
  anomaly?: boolean;
  time?: number;
  values: Map<string, { value: number; unit?: string; time: number }>;
  source?: { frame: DataFrame; row: number };
}

/** Roles whose numbers are placement or identity, not values worth listing. */
const NOT_VALUES: ReadonlySet<FieldRole> = new Set(['x', 'y', 'z', 'lat', 'lon', 'time', 'anomaly']);

/** Bookkeeping columns of the telemetry measurement, not measurements. */
const COUNTERS: ReadonlySet<string> = new Set(['seq']);

export function buildModel(frames: readonly DataFrame[], opts: BuildOptions): TwinModel {
  const problems: Problem[] = [];
  const byKey = new Map<string, Acc>();
  const rowsSeen = frames.reduce((n, f) => n + f.length, 0);
  let colorFieldName: string | undefined;
  let colorFieldCfg: Field | undefined;

  const accFor = (id: string, site: string | undefined): Acc => {
    const key = site ? `${site}/${id}` : id;
    let a = byKey.get(key);
    if (a) return a;
    // A frame without sites (InfluxQL GROUP BY asset) joins the one asset of that id, if unambiguous.
    if (!site) {
      const same = [...byKey.values()].filter((v) => v.id === id);
      if (same.length === 1 && same[0]) return same[0];
    } else {
      const bare = byKey.get(id);
      if (bare && !bare.site) {
        byKey.delete(id);
        bare.site = site;
        byKey.set(key, bare);
        return bare;
      }
    }
    a = { id, values: new Map() };
    if (site) a.site = site;
    byKey.set(key, a);
    return a;
  };

  const framesWithoutAsset: DataFrame[] = [];
  for (const frame of frames) {
    if (frame.length === 0) continue;
    const roles = assignRoles(frame, opts.mapping);
    if (roles.color && !colorFieldName) {
      colorFieldName = fieldLabel(roles.color, frame);
      colorFieldCfg = roles.color;
    }
    if (roles.asset) tableRows(frame, roles, accFor);
    else if (!labelledSeries(frame, opts.mapping, accFor)) framesWithoutAsset.push(frame);
  }
  if (!colorFieldCfg) {
    // Labelled series carry the colour metric as a value field of their own.
    const withColour = [...byKey.values()].find((a) => a.color);
    if (withColour?.color) {
      colorFieldCfg = withColour.color.field;
      colorFieldName = withColour.color.name;
    }
  }

  if (frames.length === 0 || rowsSeen === 0) {
    problems.push({
      severity: 'error',
      text:
        'No data. Query the evtwin datasource (Assets with state, or Latest values), or an InfluxDB table ' +
        'with one row per asset, e.g. SELECT last(*) FROM telemetry GROUP BY site, asset, kind (format: table).',
    });
    return { assets: [], legend: [], problems };
  }
  if (byKey.size === 0) {
    const names = [...new Set(frames.flatMap((f) => f.fields.map((fl) => fieldLabel(fl, f))))].slice(0, 12);
    const wanted = opts.mapping.asset
      ? `the mapped field "${opts.mapping.asset}"`
      : `a field named ${ROLE_ALIASES.asset.slice(0, 4).join(', ')}…`;
    problems.push({
      severity: 'error',
      text:
        `Missing field: asset. Looked for ${wanted} or an "asset" label on value fields; the data has ` +
        `${names.length ? names.join(', ') : 'no fields'}. Map one under Field mapping → Asset.`,
    });
    return { assets: [], legend: [], problems };
  }
  if (framesWithoutAsset.length > 0) {
    problems.push({
      severity: 'hint',
      text: `${framesWithoutAsset.length} frame(s) without an asset field or label were ignored (${framesWithoutAsset
        .map((f) => f.name ?? f.refId ?? '?')
        .join(', ')}).`,
    });
  }

  const thresholds = colorFieldCfg?.config?.thresholds ?? opts.thresholds ?? DEFAULT_THRESHOLDS;
  const range: { min?: number; max?: number } = {};
  if (colorFieldCfg?.config?.min != null) range.min = colorFieldCfg.config.min;
  if (colorFieldCfg?.config?.max != null) range.max = colorFieldCfg.config.max;

  const assets: AssetView[] = [];
  for (const [key, a] of byKey) {
    const status = a.status;
    const lvl = statusLevel(status ?? null);
    const colour = colourOf(a.color?.value ?? null, lvl, thresholds, range);
    const kind = a.kind ?? 'asset';
    const view: AssetView = {
      key,
      id: a.id,
      name: a.name ?? a.id,
      kind,
      shape: shapeOf(kind),
      placed: false,
      colorValue: a.color?.value ?? null,
      color: colour.color,
      level: colour.level,
      score: a.score ?? null,
      anomaly: a.anomaly ?? (a.score !== undefined && a.score >= opts.anomalyScore),
      values: [...a.values].map(([name, v]) => ({
        name,
        value: v.value,
        ...(v.unit ? { unit: v.unit } : {}),
      })),
    };
    if (a.site) view.site = a.site;
    if (colorFieldName) view.colorField = colorFieldName;
    if (status !== undefined) view.status = String(status);
    if (a.time !== undefined) view.time = a.time;
    if (a.source) view.source = a.source;
    if (a.x !== undefined && a.y !== undefined) view.position = { x: a.x, y: a.y, z: a.z ?? 0 };
    if (a.lat !== undefined && a.lon !== undefined && Math.abs(a.lat) <= 90 && Math.abs(a.lon) <= 180)
      view.location = { lat: a.lat, lon: a.lon };
    assets.push(view);
  }
  assets.sort((p, q) => p.key.localeCompare(q.key));

  if (!colorFieldName) {
    problems.push({
      severity: 'hint',
      text:
        `No colour field found (looked for ${opts.mapping.color || ROLE_ALIASES.color.join(', ')}): ` +
        'assets are coloured by status only. Choose one under Field mapping → Colour.',
    });
  }
  placementProblems(assets, opts.mode, problems);

  const unit = colorFieldCfg?.config?.unit;
  return {
    assets,
    legend: legendItems(thresholds, colorFieldName ?? 'value', unit === 'percent' ? '%' : ''),
    problems,
    ...(colorFieldName ? { colorField: colorFieldName } : {}),
  };
}

/** 3D without positions lays assets out on a grid (said in a hint); the map cannot invent locations. */
function placementProblems(assets: AssetView[], mode: TwinMode, problems: Problem[]): void {
  if (mode === '3d') {
    const missing = assets.filter((a) => !a.position);
    if (missing.length === 0) return;
    gridPlace(assets, missing);
    problems.push({
      severity: 'hint',
      text:
        missing.length === assets.length
          ? 'No x/y fields: assets are laid out on a grid. Add x, y (and z) fields, or map them under Field mapping.'
          : `${missing.length} of ${assets.length} assets have no x/y: placed on a grid beside the others (${missing
              .slice(0, 5)
              .map((a) => a.key)
              .join(', ')}${missing.length > 5 ? ', …' : ''}).`,
    });
    return;
  }
  const missing = assets.filter((a) => !a.location);
  if (missing.length === assets.length) {
    problems.push({
      severity: 'error',
      text: 'Missing fields: lat, lon. The map needs a latitude and a longitude per asset; map them under Field mapping.',
    });
  } else if (missing.length > 0) {
    problems.push({
      severity: 'hint',
      text: `${missing.length} of ${assets.length} assets have no lat/lon and are not on the map.`,
    });
  }
}

/** Unplaced assets go in rows of a square grid, 4 units apart, beyond the placed ones. */
export function gridPlace(all: AssetView[], missing: AssetView[]): void {
  const placed = all.filter((a) => a.position && !missing.includes(a));
  const maxY = placed.length ? Math.max(...placed.map((a) => a.position?.y ?? 0)) + 6 : 0;
  const minX = placed.length ? Math.min(...placed.map((a) => a.position?.x ?? 0)) : 0;
  const cols = Math.max(1, Math.ceil(Math.sqrt(missing.length)));
  missing.forEach((a, i) => {
    a.position = { x: minX + (i % cols) * 4, y: maxY + Math.floor(i / cols) * 4, z: 0 };
    a.placed = true;
  });
}

function fieldTime(roles: RoleFields, row: number): number {
  const t = roles.time ? toNumber(roles.time.values[row]) : null;
  return t ?? row;
}

function tableRows(frame: DataFrame, roles: RoleFields, accFor: (id: string, site?: string) => Acc): void {
  const roleOf = new Map<Field, FieldRole>();
  for (const [role, f] of Object.entries(roles) as [FieldRole, Field][]) roleOf.set(f, role);
  const assetField = roles.asset;
  if (!assetField) return;
  // A click follows the first data link of the asset's source frame: prefer a frame that has links
  // (the evtwin Assets frame) over one that has none (an InfluxDB table queried beside it).
  const linked = frame.fields.some((f) => (f.config.links?.length ?? 0) > 0);
  for (let row = 0; row < frame.length; row++) {
    const id = toText(assetField.values[row]);
    if (!id) continue;
    const site = roles.site ? (toText(roles.site.values[row]) ?? undefined) : undefined;
    const a = accFor(id, site);
    const t = fieldTime(roles, row);
    // Rows in any order: a cell overwrites what an older row set, never what a newer one did.
    const newer = a.time === undefined || t >= a.time;
    if (newer) {
      if (roles.time) a.time = t;
      if (!a.source) a.source = { frame, row };
    }
    if (linked && a.source && !a.source.frame.fields.some((f) => (f.config.links?.length ?? 0) > 0))
      a.source = { frame, row };
    const text = (r: FieldRole): string | undefined => {
      const f = roles[r];
      return f ? (toText(f.values[row]) ?? undefined) : undefined;
    };
    const num = (r: FieldRole): number | undefined => {
      const f = roles[r];
      return f ? (toNumber(f.values[row]) ?? undefined) : undefined;
    };
    const setIf = <K extends keyof Acc>(k: K, v: Acc[K] | undefined): void => {
      if (v !== undefined && (newer || a[k] === undefined)) a[k] = v;
    };
    setIf('name', text('name'));
    setIf('kind', text('kind'));
    setIf('x', num('x'));
    setIf('y', num('y'));
    setIf('z', num('z'));
    setIf('lat', num('lat'));
    setIf('lon', num('lon'));
    setIf('score', num('score'));
    if (roles.anomaly) {
      const v = roles.anomaly.values[row];
      const b = v === true || v === 'true' || (typeof v === 'number' && v > 0);
      if (v !== null && v !== undefined) setIf('anomaly', b);
    }
    if (roles.status) {
      const v = roles.status.values[row];
      if (typeof v === 'number' || (typeof v === 'string' && v !== '')) setIf('status', v);
    }
    if (roles.color) {
      const v = toNumber(roles.color.values[row]);
      if (v !== null && (!a.color || t >= a.color.time))
        a.color = { value: v, field: roles.color, time: t, name: fieldLabel(roles.color, frame) };
    }
    for (const f of frame.fields) {
      const role = roleOf.get(f);
      if (f.type !== FieldType.number || (role && NOT_VALUES.has(role))) continue;
      const v = toNumber(f.values[row]);
      if (v === null) continue;
      const name = normalise(fieldLabel(f, frame));
      if (COUNTERS.has(name)) continue;
      const prev = a.values.get(name);
      if (!prev || t >= prev.time)
        a.values.set(name, { value: v, ...(f.config?.unit ? { unit: f.config.unit } : {}), time: t });
    }
  }
}

/** Time series with labels ({asset, site}): each value field is one metric of one asset. */
function labelledSeries(
  frame: DataFrame,
  mapping: FieldMapping,
  accFor: (id: string, site?: string) => Acc,
): boolean {
  const assetLabel = (mapping.asset || 'asset').toLowerCase();
  const siteLabel = (mapping.site || 'site').toLowerCase();
  const colorWanted = mapping.color ? [mapping.color.toLowerCase()] : ROLE_ALIASES.color;
  let found = false;
  const timeField = frame.fields.find((f) => f.type === FieldType.time);
  for (const f of frame.fields) {
    if (f.type !== FieldType.number || !f.labels) continue;
    const labels = Object.fromEntries(Object.entries(f.labels).map(([k, v]) => [k.toLowerCase(), v]));
    const id = labels[assetLabel];
    if (!id) continue;
    found = true;
    const a = accFor(id, labels[siteLabel]);
    if (labels.kind && !a.kind) a.kind = labels.kind;
    let row = -1;
    for (let i = f.values.length - 1; i >= 0; i--) {
      if (toNumber(f.values[i]) !== null) {
        row = i;
        break;
      }
    }
    if (row < 0) continue;
    const value = toNumber(f.values[row]) ?? 0;
    const t = timeField ? (toNumber(timeField.values[row]) ?? row) : row;
    const label = fieldLabel(f, frame).replace(/\s*\{.*\}\s*$/, '');
    const name = normalise(label);
    if (a.time === undefined || t > a.time) a.time = t;
    if (colorWanted.includes(name) || colorWanted.includes(label.toLowerCase())) {
      a.color = { value, field: f, time: t, name };
    } else if (ROLE_ALIASES.score.includes(name)) a.score = value;
    else if (ROLE_ALIASES.anomaly.includes(name)) a.anomaly = value > 0;
    else if (ROLE_ALIASES.status.includes(name)) a.status = value;
    a.values.set(name, { value, ...(f.config?.unit ? { unit: f.config.unit } : {}), time: t });
  }
  return found;
}
