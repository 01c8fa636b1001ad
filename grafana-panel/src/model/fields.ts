/**
 * Which field of a frame plays which role (asset, x, lat, colour, …). An explicit mapping wins; otherwise
 * names are matched against aliases, so both the evtwin datasource's frames (site, asset, x, lat, health…)
 * and InfluxQL tables (`last_health`, `mean_temperature`, tag columns) work without configuration.
 */
import { type DataFrame, type Field, FieldType } from '@grafana/data';
import { FIELD_ROLES, type FieldMapping, type FieldRole } from '../types';

/** Names tried, in order, for a role nobody mapped. Compared after normalise(). */
export const ROLE_ALIASES: Record<FieldRole, readonly string[]> = {
  asset: ['asset', 'asset_id', 'assetid', 'device', 'device_id', 'cp', 'sensor', 'id'],
  site: ['site', 'site_id', 'plant'],
  name: ['name', 'asset_name', 'title', 'label'],
  kind: ['kind', 'type', 'asset_kind'],
  x: ['x', 'pos_x', 'position_x'],
  y: ['y', 'pos_y', 'position_y'],
  z: ['z', 'pos_z', 'position_z'],
  lat: ['lat', 'latitude'],
  lon: ['lon', 'lng', 'long', 'longitude'],
  color: ['health', 'health_score'],
  status: ['status', 'state', 'connector_status'],
  score: ['score', 'anomaly_score'],
  anomaly: ['anomaly', 'is_anomaly'],
  time: ['time', 'ts', 'timestamp', 'lastseen', 'last_seen'],
};

/** Roles whose value is text (identity) rather than a measurement. */
export const TEXT_ROLES: ReadonlySet<FieldRole> = new Set(['asset', 'site', 'name', 'kind']);

/** Lower case, without an aggregation prefix (`last_`, `mean_`…) or a measurement prefix (`telemetry.`). */
export function normalise(name: string): string {
  return name
    .trim()
    .toLowerCase()
    .replace(/^[a-z_]+\./, '')
    .replace(/^(last|mean|max|min|first|median)_/, '');
}

/** What a field is called to a user: the datasource's display name, else its name. */
export function fieldLabel(field: Field, frame?: DataFrame): string {
  const fromDs = field.config?.displayNameFromDS ?? field.config?.displayName;
  if (fromDs) return fromDs;
  // InfluxQL time series name their value field "Value" and put the metric in the frame name.
  if (field.name === 'Value' && frame?.name) return frame.name;
  return field.name;
}

export type RoleFields = Partial<Record<FieldRole, Field>>;

/** Assign fields of one frame to roles. A field takes at most one role. */
export function assignRoles(frame: DataFrame, mapping: FieldMapping): RoleFields {
  const out: RoleFields = {};
  const used = new Set<Field>();
  const byExact = (wanted: string): Field | undefined => {
    const w = wanted.trim().toLowerCase();
    return frame.fields.find(
      (f) => !used.has(f) && (f.name.toLowerCase() === w || fieldLabel(f, frame).toLowerCase() === w),
    );
  };
  // Explicit mappings first, so auto-detection cannot steal a field the user chose.
  for (const role of FIELD_ROLES) {
    const wanted = mapping[role];
    if (!wanted) continue;
    const f = byExact(wanted);
    if (f) {
      out[role] = f;
      used.add(f);
    }
  }
  for (const role of FIELD_ROLES) {
    if (out[role] || mapping[role]) continue;
    for (const alias of ROLE_ALIASES[role]) {
      const f = frame.fields.find(
        (fl) => !used.has(fl) && roleFits(role, fl) && normalise(fl.name) === alias,
      );
      if (f) {
        out[role] = f;
        used.add(f);
        break;
      }
    }
  }
  return out;
}

function roleFits(role: FieldRole, f: Field): boolean {
  if (role === 'time') return f.type === FieldType.time || f.type === FieldType.number;
  if (role === 'asset' || role === 'site' || role === 'name' || role === 'kind')
    return f.type !== FieldType.time;
  if (role === 'status' || role === 'anomaly') return f.type !== FieldType.time;
  return f.type === FieldType.number || f.type === FieldType.string;
}

/** A cell as a finite number, or null (strings such as "42.1" count; booleans are 0/1). */
export function toNumber(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    return Number.isFinite(n) ? n : null;
  }
  return null;
}

export function toText(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return null;
}
