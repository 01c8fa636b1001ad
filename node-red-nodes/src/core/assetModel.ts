/**
 * The asset model (provisioning/evtwin/*.yaml): sites → lines → assets. One loader, used by nodes,
 * API and tools. Errors name the file, line, column and field.
 */
import { LineCounter, isMap, isScalar, parseDocument } from 'yaml';
import { ASSET_KINDS, isAssetKind, type AssetKind } from './kinds';
import { ID_PATTERN, METRIC_PATTERN } from './reading';

export interface GeoLocation {
  lat: number;
  lon: number;
}
export interface Position3D {
  x: number;
  y: number;
  z: number;
}
export interface MetricBounds {
  min?: number;
  max?: number;
}
export interface Asset {
  id: string;
  site: string;
  line?: string;
  kind: AssetKind;
  name: string;
  location?: GeoLocation;
  position?: Position3D;
  bounds: Record<string, MetricBounds>;
}
export interface Line {
  id: string;
  name: string;
}
export interface Site {
  id: string;
  name: string;
  location?: GeoLocation;
  lines: Line[];
}
export interface AssetModel {
  sites: Site[];
  assets: Asset[];
}

export class AssetModelError extends Error {
  override name = 'AssetModelError';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${file}:${line}:${column}: ${field}: ${problem}`);
  }
}

type Path = (string | number)[];
const pathText = (path: Path): string =>
  path.reduce<string>((s, p) => (typeof p === 'number' ? `${s}[${p}]` : s ? `${s}.${p}` : p), '') ||
  '(top level)';

/** A YAML document opened for validation: its plain value and helpers that fail with file:line:column. */
interface YamlCheck {
  root: unknown;
  fail: (path: Path, problem: string) => never;
  obj: (v: unknown, path: Path) => Record<string, unknown>;
  list: (v: unknown, path: Path) => unknown[];
  known: (o: Record<string, unknown>, keys: string[], path: Path) => void;
  id: (v: unknown, path: Path) => string;
  str: (v: unknown, path: Path, fallback: string) => string;
  num: (v: unknown, path: Path) => number;
}

/** Parse YAML and return validation helpers whose errors point at the offending key (one loader for all files). */
function openYaml(text: string, file: string): YamlCheck {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const firstError = doc.errors[0];
  if (firstError) {
    const pos = lineCounter.linePos(firstError.pos[0]);
    throw new AssetModelError(
      file,
      pos.line,
      pos.col,
      '(syntax)',
      firstError.message.split('\n')[0] ?? 'invalid YAML',
    );
  }
  const fail = (path: Path, problem: string): never => {
    // Point at the key of a mapping entry (where a reader looks), else at the nearest node that exists.
    const last = path[path.length - 1];
    const parent: unknown = doc.getIn(path.slice(0, -1), true);
    let node: unknown = isMap(parent)
      ? parent.items.find((pair) => isScalar(pair.key) && pair.key.value === last)?.key
      : undefined;
    for (let p = path.slice(); (!node || !hasRange(node)) && p.length >= 0; p = p.slice(0, -1)) {
      node = doc.getIn(p, true);
      if (p.length === 0) break;
    }
    const offset = hasRange(node) ? node.range[0] : 0;
    const pos = lineCounter.linePos(offset);
    throw new AssetModelError(file, pos.line, pos.col, pathText(path), problem);
  };
  return {
    root: doc.toJS() as unknown,
    fail,
    obj: (v, path) =>
      typeof v === 'object' && v !== null && !Array.isArray(v)
        ? (v as Record<string, unknown>)
        : fail(path, 'expected a mapping'),
    list: (v, path) => (Array.isArray(v) ? v : fail(path, 'expected a list')),
    known: (o, keys, path) => {
      for (const k of Object.keys(o))
        if (!keys.includes(k)) fail([...path, k], `unknown field (allowed: ${keys.join(', ')})`);
    },
    id: (v, path) =>
      typeof v === 'string' && ID_PATTERN.test(v)
        ? v
        : fail(path, 'expected an id of letters, digits, "_", "." or "-"'),
    str: (v, path, fallback) =>
      v === undefined ? fallback : typeof v === 'string' ? v : fail(path, 'expected text'),
    num: (v, path) => (typeof v === 'number' && Number.isFinite(v) ? v : fail(path, 'expected a number')),
  };
}

/** Parse and validate an asset model; throws AssetModelError at the first problem. */
export function parseAssetModel(text: string, file = 'assets.yaml'): AssetModel {
  const { root, fail, obj, list, known, id, str, num } = openYaml(text, file);
  const geo = (v: unknown, path: Path): GeoLocation | undefined => {
    if (v === undefined) return undefined;
    const o = obj(v, path);
    known(o, ['lat', 'lon'], path);
    const lat = num(o.lat, [...path, 'lat']);
    const lon = num(o.lon, [...path, 'lon']);
    if (lat < -90 || lat > 90) fail([...path, 'lat'], 'latitude must be within -90..90');
    if (lon < -180 || lon > 180) fail([...path, 'lon'], 'longitude must be within -180..180');
    return { lat, lon };
  };
  const pos3 = (v: unknown, path: Path): Position3D | undefined => {
    if (v === undefined) return undefined;
    const o = obj(v, path);
    known(o, ['x', 'y', 'z'], path);
    return {
      x: num(o.x, [...path, 'x']),
      y: num(o.y, [...path, 'y']),
      z: o.z === undefined ? 0 : num(o.z, [...path, 'z']),
    };
  };
  const bounds = (v: unknown, path: Path): Record<string, MetricBounds> => {
    if (v === undefined) return {};
    const o = obj(v, path);
    const out: Record<string, MetricBounds> = {};
    for (const [metric, b] of Object.entries(o)) {
      const p = [...path, metric];
      if (!METRIC_PATTERN.test(metric)) fail(p, 'not a valid metric name');
      const bo = obj(b, p);
      known(bo, ['min', 'max'], p);
      const mb: MetricBounds = {};
      if (bo.min !== undefined) mb.min = num(bo.min, [...p, 'min']);
      if (bo.max !== undefined) mb.max = num(bo.max, [...p, 'max']);
      if (mb.min !== undefined && mb.max !== undefined && mb.min > mb.max) fail(p, 'min is above max');
      out[metric] = mb;
    }
    return out;
  };

  const top = obj(root ?? {}, []);
  known(top, ['sites'], []);
  const model: AssetModel = { sites: [], assets: [] };
  const seenSites = new Set<string>();
  const seenAssets = new Set<string>();
  const readAssets = (v: unknown, path: Path, site: string, line: string | undefined): void => {
    if (v === undefined) return;
    list(v, path).forEach((a, i) => {
      const p = [...path, i];
      const o = obj(a, p);
      known(o, ['id', 'kind', 'name', 'location', 'position', 'bounds'], p);
      const assetId = id(o.id, [...p, 'id']);
      const key = `${site}/${assetId}`;
      if (seenAssets.has(key)) fail([...p, 'id'], `asset "${assetId}" appears twice in site "${site}"`);
      seenAssets.add(key);
      if (!isAssetKind(o.kind)) fail([...p, 'kind'], `expected one of ${ASSET_KINDS.join(', ')}`);
      const asset: Asset = {
        id: assetId,
        site,
        kind: o.kind as AssetKind,
        name: str(o.name, [...p, 'name'], assetId),
        bounds: bounds(o.bounds, [...p, 'bounds']),
      };
      if (line !== undefined) asset.line = line;
      const location = geo(o.location, [...p, 'location']);
      if (location) asset.location = location;
      const position = pos3(o.position, [...p, 'position']);
      if (position) asset.position = position;
      model.assets.push(asset);
    });
  };
  list(top.sites ?? [], ['sites']).forEach((s, i) => {
    const p: Path = ['sites', i];
    const o = obj(s, p);
    known(o, ['id', 'name', 'location', 'lines', 'assets'], p);
    const siteId = id(o.id, [...p, 'id']);
    if (seenSites.has(siteId)) fail([...p, 'id'], `site "${siteId}" appears twice`);
    seenSites.add(siteId);
    const site: Site = { id: siteId, name: str(o.name, [...p, 'name'], siteId), lines: [] };
    const location = geo(o.location, [...p, 'location']);
    if (location) site.location = location;
    model.sites.push(site);
    const seenLines = new Set<string>();
    list(o.lines ?? [], [...p, 'lines']).forEach((l, j) => {
      const lp = [...p, 'lines', j];
      const lo = obj(l, lp);
      known(lo, ['id', 'name', 'assets'], lp);
      const lineId = id(lo.id, [...lp, 'id']);
      if (seenLines.has(lineId)) fail([...lp, 'id'], `line "${lineId}" appears twice in site "${siteId}"`);
      seenLines.add(lineId);
      site.lines.push({ id: lineId, name: str(lo.name, [...lp, 'name'], lineId) });
      readAssets(lo.assets, [...lp, 'assets'], siteId, lineId);
    });
    readAssets(o.assets, [...p, 'assets'], siteId, undefined);
  });
  return model;
}

function hasRange(node: unknown): node is { range: [number, number, number] } {
  return typeof node === 'object' && node !== null && Array.isArray((node as { range?: unknown }).range);
}

/** Fast look-up of assets by site and id. */
export interface AssetIndex {
  get(site: string, asset: string): Asset | undefined;
  /** The asset with this id when exactly one site has it (topics without {site}). */
  byId(asset: string): Asset | undefined;
}

export function indexAssets(model: AssetModel): AssetIndex {
  const bySite = new Map<string, Asset>();
  const byId = new Map<string, Asset | null>();
  for (const a of model.assets) {
    bySite.set(`${a.site}/${a.id}`, a);
    byId.set(a.id, byId.has(a.id) ? null : a);
  }
  return {
    get: (site, asset) => bySite.get(`${site}/${asset}`),
    byId: (asset) => byId.get(asset) ?? undefined,
  };
}

// ---- Users and scopes (provisioning/evtwin/users.yaml) ----

/** Roles, most powerful first. admin: everything plus the admin API; head: sees everything; lead: their
 * sites or lines; worker: their assets; citizen: only their own grievances. */
export const ROLES = ['admin', 'head', 'lead', 'worker', 'citizen'] as const;
export type Role = (typeof ROLES)[number];
export const isRole = (v: unknown): v is Role =>
  typeof v === 'string' && (ROLES as readonly string[]).includes(v);

/** What a lead or worker may see; references are `site`, `site/line` and `site/asset`. */
export interface UserScope {
  sites: string[];
  lines: string[];
  assets: string[];
}

export interface User {
  login: string;
  name: string;
  role: Role;
  scope: UserScope;
  /** `scrypt$N$r$p$salt$hash` (base64url); absent: the user cannot log in with a password. */
  passwordHash?: string;
}

/** Logins are also Grafana logins, which may be e-mail addresses. */
export const LOGIN_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$/;
/** The shape of a stored password hash (runtime/passwords.ts makes and checks them). */
export const PASSWORD_HASH_PATTERN =
  /^scrypt\$\d{1,8}\$\d{1,3}\$\d{1,3}\$[A-Za-z0-9_-]{16,}\$[A-Za-z0-9_-]{16,}$/;

/** Which scope fields each role may carry: the others would be ignored, so they are refused. */
const SCOPE_FIELDS: Record<Role, readonly (keyof UserScope)[]> = {
  admin: [],
  head: [],
  lead: ['sites', 'lines'],
  worker: ['assets'],
  citizen: [],
};

/**
 * Parse and validate users.yaml; with a model, every scope reference must name a site, line or asset
 * of it. Throws AssetModelError (file, line, column, field) at the first problem.
 */
export function parseUsers(text: string, file = 'users.yaml', model?: AssetModel): User[] {
  const { root, fail, obj, list, known, str } = openYaml(text, file);
  const top = obj(root ?? {}, []);
  known(top, ['users'], []);
  const sites = model ? new Set(model.sites.map((s) => s.id)) : undefined;
  const lines = model
    ? new Set(model.sites.flatMap((s) => s.lines.map((l) => `${s.id}/${l.id}`)))
    : undefined;
  const assets = model ? new Set(model.assets.map((a) => `${a.site}/${a.id}`)) : undefined;
  const exists: Record<keyof UserScope, Set<string> | undefined> = { sites, lines, assets };
  const shape: Record<keyof UserScope, RegExp> = {
    sites: ID_PATTERN,
    lines: /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\/[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/,
    assets: /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\/[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/,
  };
  const seen = new Set<string>();
  return list(top.users ?? [], ['users']).map((u, i): User => {
    const p: Path = ['users', i];
    const o = obj(u, p);
    known(o, ['login', 'name', 'role', 'scope', 'password'], p);
    const login = o.login;
    if (typeof login !== 'string' || !LOGIN_PATTERN.test(login))
      return fail([...p, 'login'], 'expected a login of letters, digits, "_", ".", "@", "+" or "-"');
    if (seen.has(login)) fail([...p, 'login'], `user "${login}" appears twice`);
    seen.add(login);
    if (!isRole(o.role)) return fail([...p, 'role'], `expected one of ${ROLES.join(', ')}`);
    const role = o.role;
    const scope: UserScope = { sites: [], lines: [], assets: [] };
    if (o.scope !== undefined) {
      const sp = [...p, 'scope'];
      const so = obj(o.scope, sp);
      known(so, ['sites', 'lines', 'assets'], sp);
      for (const field of ['sites', 'lines', 'assets'] as const) {
        if (so[field] === undefined) continue;
        const fp = [...sp, field];
        if (!SCOPE_FIELDS[role].includes(field))
          fail(
            fp,
            SCOPE_FIELDS[role].length === 0
              ? `a ${role} has no scope (it sees ${role === 'citizen' ? 'only their own grievances' : 'everything'})`
              : `a ${role}'s scope lists ${SCOPE_FIELDS[role].join(' or ')} only`,
          );
        scope[field] = list(so[field], fp).map((ref, j) => {
          if (typeof ref !== 'string' || !shape[field].test(ref))
            fail(
              [...fp, j],
              field === 'sites' ? 'expected a site id' : `expected "site/${field.slice(0, -1)}"`,
            );
          const r = ref as string;
          if (exists[field] && !exists[field].has(r))
            fail([...fp, j], `no ${field.slice(0, -1)} "${r}" in the asset model`);
          return r;
        });
      }
    }
    if (SCOPE_FIELDS[role].length > 0 && scope.sites.length + scope.lines.length + scope.assets.length === 0)
      fail(
        [...p, o.scope === undefined ? 'role' : 'scope'],
        `a ${role} needs a scope (${SCOPE_FIELDS[role].join(' or ')})`,
      );
    const user: User = { login, name: str(o.name, [...p, 'name'], login), role, scope };
    if (o.password !== undefined) {
      if (typeof o.password !== 'string' || !PASSWORD_HASH_PATTERN.test(o.password))
        fail(
          [...p, 'password'],
          'expected a scrypt hash (scrypt$N$r$p$salt$hash), never a plain password: set it with `evtwin user passwd`',
        );
      user.passwordHash = o.password as string;
    }
    return user;
  });
}

/** Users by login. */
export function indexUsers(users: readonly User[]): ReadonlyMap<string, User> {
  return new Map(users.map((u) => [u.login, u]));
}
