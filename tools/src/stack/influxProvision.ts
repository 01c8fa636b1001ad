/**
 * Apply provisioning/influxdb/*.yaml to an InfluxDB 1.x server, idempotently: create the database,
 * create or alter retention policies, create continuous queries (replacing one whose text changed).
 * A plain function of (url, file) so the local stack, the tests and docker compose share it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InfluxDB } from 'influx';
import { LineCounter, parseDocument, type Document } from 'yaml';

export interface RetentionPolicySpec {
  name: string;
  /** InfluxQL duration (e.g. 30d, 260w) or INF. */
  duration: string;
  replication: number;
  default: boolean;
}
export interface ContinuousQuerySpec {
  name: string;
  query: string;
  resample?: { every?: string; for?: string };
}
export interface InfluxProvisioning {
  database: string;
  retentionPolicies: RetentionPolicySpec[];
  continuousQueries: ContinuousQuerySpec[];
}

export type ProvisionAction = 'created' | 'altered' | 'replaced' | 'unchanged';
export interface ProvisionStep {
  kind: 'database' | 'retention-policy' | 'continuous-query';
  name: string;
  action: ProvisionAction;
}
export interface ProvisionReport {
  database: string;
  defaultRetentionPolicy: string | undefined;
  steps: ProvisionStep[];
  /** True when nothing had to change. */
  unchanged: boolean;
}

export class ProvisioningError extends Error {
  override name = 'ProvisioningError';
}

const NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const DURATION = /^(INF|inf|(\d+(ns|us|u|µ|ms|s|m|h|d|w))+)$/;
const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  u: 1e-3,
  µ: 1e-3,
  ms: 1,
  s: 1e3,
  m: 60e3,
  h: 3600e3,
  d: 86400e3,
  w: 604800e3,
};

/** Milliseconds of an InfluxQL duration ("30d", "720h0m0s"); INF and 0 both mean "forever" (0). */
export function durationMs(text: string): number {
  if (/^inf$/i.test(text)) return 0;
  let total = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ns|us|u|µ|ms|s|m|h|d|w)/g)) {
    total += Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? 0);
  }
  return total;
}

/** Parse and validate a provisioning file's text; errors name the file, line and field. */
export function parseInfluxProvisioning(text: string, file = 'influxdb.yaml'): InfluxProvisioning {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const syntax = doc.errors[0];
  if (syntax) {
    const pos = lines.linePos(syntax.pos[0]);
    throw new ProvisioningError(`${file}:${pos.line}: ${syntax.message.split('\n')[0] ?? 'invalid YAML'}`);
  }
  const fail = (path: (string | number)[], problem: string): never => {
    throw new ProvisioningError(`${file}:${lineOf(doc, lines, path)}: ${pathText(path)}: ${problem}`);
  };
  const root: unknown = doc.toJS();
  if (!isRecord(root))
    return fail([], 'expected a mapping with database, retentionPolicies, continuousQueries');
  for (const key of Object.keys(root)) {
    if (!['database', 'retentionPolicies', 'continuousQueries'].includes(key)) fail([key], 'unknown key');
  }
  const database = root.database;
  if (typeof database !== 'string' || !NAME.test(database)) {
    return fail(['database'], 'required: a database name (letters, digits, _ and -)');
  }

  const rpsIn = root.retentionPolicies ?? [];
  if (!Array.isArray(rpsIn) || rpsIn.length === 0)
    return fail(['retentionPolicies'], 'required: a non-empty list');
  const retentionPolicies: RetentionPolicySpec[] = rpsIn.map((rp: unknown, i): RetentionPolicySpec => {
    const at = ['retentionPolicies', i];
    if (!isRecord(rp)) return fail(at, 'expected a mapping with name, duration, replication, default');
    for (const key of Object.keys(rp)) {
      if (!['name', 'duration', 'replication', 'default'].includes(key)) fail([...at, key], 'unknown key');
    }
    if (typeof rp.name !== 'string' || !NAME.test(rp.name)) fail([...at, 'name'], 'required: a policy name');
    if (typeof rp.duration !== 'string' || !DURATION.test(rp.duration)) {
      fail([...at, 'duration'], `"${String(rp.duration)}" is not an InfluxQL duration (e.g. 30d, 26w, INF)`);
    }
    const replication = rp.replication ?? 1;
    if (typeof replication !== 'number' || !Number.isInteger(replication) || replication < 1) {
      fail([...at, 'replication'], 'must be a whole number >= 1');
    }
    if (rp.default !== undefined && typeof rp.default !== 'boolean')
      fail([...at, 'default'], 'must be true or false');
    return {
      name: String(rp.name),
      duration: String(rp.duration),
      replication: Number(replication),
      default: rp.default === true,
    };
  });
  const rpNames = new Set<string>();
  retentionPolicies.forEach((rp, i) => {
    if (rpNames.has(rp.name)) fail(['retentionPolicies', i, 'name'], `duplicate policy "${rp.name}"`);
    rpNames.add(rp.name);
  });
  const defaults = retentionPolicies.filter((rp) => rp.default);
  if (defaults.length !== 1) {
    fail(['retentionPolicies'], `exactly one policy must be default: true (found ${defaults.length})`);
  }

  const cqsIn = root.continuousQueries ?? [];
  if (!Array.isArray(cqsIn)) return fail(['continuousQueries'], 'expected a list');
  const cqNames = new Set<string>();
  const continuousQueries = cqsIn.map((cq: unknown, i): ContinuousQuerySpec => {
    const at = ['continuousQueries', i];
    if (!isRecord(cq)) return fail(at, 'expected a mapping with name, query and optional resample');
    for (const key of Object.keys(cq)) {
      if (!['name', 'query', 'resample'].includes(key)) fail([...at, key], 'unknown key');
    }
    if (typeof cq.name !== 'string' || !NAME.test(cq.name))
      return fail([...at, 'name'], 'required: a query name');
    if (cqNames.has(cq.name)) fail([...at, 'name'], `duplicate continuous query "${cq.name}"`);
    cqNames.add(cq.name);
    const query = typeof cq.query === 'string' ? cq.query.replace(/\s+/g, ' ').trim() : '';
    if (!/^select\s.+\sinto\s.+\sfrom\s.+\sgroup by\s+time\(/i.test(query)) {
      fail([...at, 'query'], 'must be SELECT ... INTO ... FROM ... GROUP BY time(...)');
    }
    // Every "db"."rp" this query names in the provisioned database must be a provisioned policy.
    for (const m of query.matchAll(/"?([A-Za-z0-9_-]+)"?\."?([A-Za-z0-9_-]+)"?\./g)) {
      if (m[1] === database && !rpNames.has(m[2] ?? '')) {
        fail([...at, 'query'], `retention policy "${m[2]}" is not declared in retentionPolicies`);
      }
    }
    const spec: ContinuousQuerySpec = { name: cq.name, query };
    if (cq.resample !== undefined) {
      if (!isRecord(cq.resample)) return fail([...at, 'resample'], 'expected { every, for }');
      const resample: { every?: string; for?: string } = {};
      for (const [key, value] of Object.entries(cq.resample)) {
        if (key !== 'every' && key !== 'for') fail([...at, 'resample', key], 'unknown key (every, for)');
        if (typeof value !== 'string' || !DURATION.test(value) || /^inf$/i.test(value)) {
          fail([...at, 'resample', key], `"${String(value)}" is not a duration`);
        }
        resample[key as 'every' | 'for'] = String(value);
      }
      spec.resample = resample;
    }
    return spec;
  });
  return { database, retentionPolicies, continuousQueries };
}

export function loadInfluxProvisioning(file: string): InfluxProvisioning {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ProvisioningError(`${file}: cannot read: ${(err as Error).message}`);
  }
  return parseInfluxProvisioning(text, file);
}

function resampleClause(cq: ContinuousQuerySpec): string {
  if (!cq.resample || (!cq.resample.every && !cq.resample.for)) return '';
  return (
    'RESAMPLE' +
    (cq.resample.every ? ` EVERY ${cq.resample.every}` : '') +
    (cq.resample.for ? ` FOR ${cq.resample.for}` : '')
  );
}

/** What SHOW CONTINUOUS QUERIES prints, reduced to compare with ours (quotes, case and spaces vary). */
const normaliseCq = (text: string): string =>
  text
    .replace(/"/g, '')
    .replace(/\s+/g, ' ')
    .replace(/\s*,\s*/g, ',')
    .trim()
    .toLowerCase();

/** Apply a provisioning file to the InfluxDB at url; safe to run any number of times. */
export async function provisionInfluxDB(
  url: string,
  file: string,
  auth: { username?: string; password?: string } = {},
): Promise<ProvisionReport> {
  const spec = loadInfluxProvisioning(file);
  const influx = new InfluxDB({
    host: new URL(url).hostname,
    port: Number(new URL(url).port || 8086),
    protocol: new URL(url).protocol === 'https:' ? 'https' : 'http',
    database: spec.database,
    ...(auth.username ? { username: auth.username, password: auth.password ?? '' } : {}),
  });
  const steps: ProvisionStep[] = [];
  const db = spec.database;

  const names = await influx.getDatabaseNames();
  if (!names.includes(db)) await influx.createDatabase(db);
  steps.push({ kind: 'database', name: db, action: names.includes(db) ? 'unchanged' : 'created' });

  const existing = await influx.showRetentionPolicies(db);
  for (const rp of spec.retentionPolicies) {
    const have = existing.find((e) => e.name === rp.name);
    const options = {
      database: db,
      duration: rp.duration,
      replication: rp.replication,
      isDefault: rp.default,
    };
    if (!have) {
      await influx.createRetentionPolicy(rp.name, options);
      steps.push({ kind: 'retention-policy', name: rp.name, action: 'created' });
    } else if (
      durationMs(have.duration) !== durationMs(rp.duration) ||
      have.replicaN !== rp.replication ||
      (rp.default && !have.default)
    ) {
      await influx.alterRetentionPolicy(rp.name, options);
      steps.push({ kind: 'retention-policy', name: rp.name, action: 'altered' });
    } else {
      steps.push({ kind: 'retention-policy', name: rp.name, action: 'unchanged' });
    }
  }

  const cqs = await influx.showContinousQueries(db);
  for (const cq of spec.continuousQueries) {
    const resample = resampleClause(cq);
    const wanted = normaliseCq(
      `CREATE CONTINUOUS QUERY ${cq.name} ON ${db} ${resample} BEGIN ${cq.query} END`.replace(/\s+/g, ' '),
    );
    const have = cqs.find((e) => e.name === cq.name);
    if (have && normaliseCq(have.query) === wanted) {
      steps.push({ kind: 'continuous-query', name: cq.name, action: 'unchanged' });
      continue;
    }
    // InfluxDB 1.x cannot alter a continuous query: drop and create it again.
    if (have) await influx.dropContinuousQuery(cq.name, db);
    await influx.createContinuousQuery(cq.name, cq.query, db, resample);
    steps.push({ kind: 'continuous-query', name: cq.name, action: have ? 'replaced' : 'created' });
  }

  const after = await influx.showRetentionPolicies(db);
  return {
    database: db,
    defaultRetentionPolicy: after.find((rp) => rp.default)?.name,
    steps,
    unchanged: steps.every((s) => s.action === 'unchanged'),
  };
}

/** One line for a console: "evtwin: created database, 3 RPs (3 created), 2 CQs (2 unchanged)". */
export function describeProvisioning(report: ProvisionReport): string {
  const count = (kind: ProvisionStep['kind']): string => {
    const of = report.steps.filter((s) => s.kind === kind);
    const by = new Map<string, number>();
    for (const s of of) by.set(s.action, (by.get(s.action) ?? 0) + 1);
    return `${of.length} (${[...by].map(([a, n]) => `${n} ${a}`).join(', ')})`;
  };
  const dbAction = report.steps.find((s) => s.kind === 'database')?.action ?? 'unchanged';
  return (
    `database ${report.database} ${dbAction}; retention policies ${count('retention-policy')}, ` +
    `default ${report.defaultRetentionPolicy ?? '?'}; continuous queries ${count('continuous-query')}`
  );
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function pathText(path: (string | number)[]): string {
  return (
    path.reduce<string>((s, p) => (typeof p === 'number' ? `${s}[${p}]` : s ? `${s}.${p}` : p), '') ||
    '(top level)'
  );
}

function lineOf(doc: Document, lines: LineCounter, path: (string | number)[]): number {
  for (let p = path; ; p = p.slice(0, -1)) {
    const node: unknown = p.length === 0 ? doc.contents : doc.getIn(p, true);
    if (isRecord(node) && Array.isArray(node.range) && typeof node.range[0] === 'number') {
      return lines.linePos(node.range[0]).line;
    }
    if (p.length === 0) return 1;
  }
}

/**
 * `node tools/dist/stack/influxProvision.js URL [FILE]` (docker compose: a one-shot service). Waits up
 * to 60 s for InfluxDB to answer /ping, applies the file, prints one line; exits 1 on any error.
 * Credentials, when InfluxDB needs them, come from INFLUX_USERNAME / INFLUX_PASSWORD.
 */
async function main(argv: string[]): Promise<number> {
  const [url, file = join(__dirname, '../../../provisioning/influxdb/evtwin.yaml')] = argv;
  if (!url) {
    console.error('usage: influxProvision URL [FILE]');
    return 1;
  }
  for (const deadline = Date.now() + 60_000; ;) {
    const up = await fetch(new URL('/ping', url)).then(
      (r) => r.status === 204,
      () => false,
    );
    if (up) break;
    if (Date.now() > deadline) {
      console.error(`${url}: InfluxDB did not answer /ping within 60 s`);
      return 1;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  const report = await provisionInfluxDB(url, file, {
    ...(process.env.INFLUX_USERNAME ? { username: process.env.INFLUX_USERNAME } : {}),
    ...(process.env.INFLUX_PASSWORD ? { password: process.env.INFLUX_PASSWORD } : {}),
  });
  console.log(`${url}: ${describeProvisioning(report)}`);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : String(err));
      process.exit(1);
    },
  );
}
