/**
 * Simulated drivers: replay a file of charge requests against the twin API the way a driver app
 * would (log in, then `POST /chargers/{site}/{cp}/commands` with a start command whose `until`
 * asks the central system to stop after the energy or time requested). `evtwin-sim drivers`.
 *
 * Request file, CSV (header row, any column order) or JSON Lines, one request per line:
 *   at        seconds after the replay starts, or an ISO 8601 time (replayed relative to the first)
 *   cp        charge point "<site>/<cp>"
 *   connector connector id >= 1 (optional)
 *   idTag     the driver's tag (1-20 characters)
 *   kWh       energy wanted, and/or
 *   duration  seconds of charging wanted
 * Every line is checked before anything is sent; errors name the line.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ID_PATTERN, TWIN_API_BASE, parseCommand } from 'node-red-contrib-evtwin';

export interface ChargeRequest {
  /** Line in the file (1-based). */
  line: number;
  /** Offset from the start of the replay, ms. */
  atMs: number;
  cp: string;
  connector?: number;
  idTag: string;
  kWh?: number;
  durationS?: number;
}

export interface LineError {
  line: number;
  message: string;
}

const FIELDS = ['at', 'cp', 'connector', 'idTag', 'kWh', 'duration'] as const;
type Field = (typeof FIELDS)[number];
type Raw = Partial<Record<Field, unknown>>;

/** One CSV line's cells (quotes allowed, `""` inside quotes). */
function csvCells(line: string): string[] | string {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i] as string;
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"' && cur === '') quoted = true;
    else if (ch === ',') {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (quoted) return 'unterminated quote';
  out.push(cur.trim());
  return out;
}

function num(v: unknown, what: string): number | string | undefined {
  if (v === undefined || v === '' || v === null) return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : `${what} must be a number, got ${JSON.stringify(v)}`;
}

/** Validate one request; `at` is resolved later (numbers vs times). */
function checkRaw(raw: Raw, line: number): { req: ChargeRequest; at: number | string } | LineError {
  const fail = (message: string): LineError => ({ line, message });
  for (const k of Object.keys(raw))
    if (!(FIELDS as readonly string[]).includes(k))
      return fail(`unknown field "${k}" (fields: ${FIELDS.join(', ')})`);
  let at: number | string;
  if (typeof raw.at === 'number' || (typeof raw.at === 'string' && /^\d+(\.\d+)?$/.test(raw.at.trim()))) {
    at = Number(raw.at);
    if (at < 0) return fail('"at" must be >= 0 seconds');
  } else if (typeof raw.at === 'string' && Number.isFinite(Date.parse(raw.at))) {
    at = raw.at;
  } else
    return fail(`"at" must be seconds from the start or an ISO 8601 time, got ${JSON.stringify(raw.at)}`);
  const cp = typeof raw.cp === 'string' ? raw.cp.trim() : '';
  const [site, asset, extra] = cp.split('/');
  if (!site || !asset || extra !== undefined || !ID_PATTERN.test(site) || !ID_PATTERN.test(asset))
    return fail(`"cp" must be "<site>/<cp>", got ${JSON.stringify(raw.cp)}`);
  const connector = num(raw.connector, '"connector"');
  if (typeof connector === 'string') return fail(connector);
  if (connector !== undefined && (!Number.isInteger(connector) || connector < 1))
    return fail('"connector" must be an integer >= 1');
  const idTag =
    typeof raw.idTag === 'string' ? raw.idTag.trim() : typeof raw.idTag === 'number' ? String(raw.idTag) : '';
  if (idTag === '' || idTag.length > 20) return fail('"idTag" must be 1 to 20 characters');
  const kWh = num(raw.kWh, '"kWh"');
  if (typeof kWh === 'string') return fail(kWh);
  const durationS = num(raw.duration, '"duration"');
  if (typeof durationS === 'string') return fail(durationS);
  if (kWh === undefined && durationS === undefined) return fail('give "kWh" or "duration" (or both)');
  if ((kWh !== undefined && kWh <= 0) || (durationS !== undefined && durationS <= 0))
    return fail('"kWh" and "duration" must be positive');
  const req: ChargeRequest = { line, atMs: 0, cp, idTag };
  if (connector !== undefined) req.connector = connector;
  if (kWh !== undefined) req.kWh = kWh;
  if (durationS !== undefined) req.durationS = durationS;
  // The same validation the API applies: what passes here is what the API accepts.
  try {
    parseCommand(startBody(req), cp);
  } catch (err) {
    return fail((err as Error).message);
  }
  return { req, at };
}

/** Parse a request file (CSV or JSON Lines, told apart by the first non-empty line). */
export function parseChargeRequests(text: string): { requests: ChargeRequest[]; errors: LineError[] } {
  const lines = text.split(/\r?\n/);
  const errors: LineError[] = [];
  const checked: { req: ChargeRequest; at: number | string }[] = [];
  const first = lines.findIndex((l) => l.trim() !== '' && !l.trim().startsWith('#'));
  if (first < 0) return { requests: [], errors: [{ line: 1, message: 'no requests in the file' }] };
  const jsonl = (lines[first] as string).trim().startsWith('{');
  let header: string[] | undefined;
  lines.forEach((text, i) => {
    const line = i + 1;
    const t = text.trim();
    if (t === '' || t.startsWith('#')) return;
    let raw: Raw;
    if (jsonl) {
      try {
        const v: unknown = JSON.parse(t);
        if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
        raw = v as Raw;
      } catch (err) {
        errors.push({ line, message: `not a JSON object: ${(err as Error).message}` });
        return;
      }
    } else {
      const cells = csvCells(t);
      if (typeof cells === 'string') {
        errors.push({ line, message: cells });
        return;
      }
      if (!header) {
        header = cells;
        const bad = cells.filter((c) => !(FIELDS as readonly string[]).includes(c));
        if (bad.length > 0)
          errors.push({
            line,
            message: `unknown column(s) ${bad.join(', ')} (columns: ${FIELDS.join(', ')})`,
          });
        for (const need of ['at', 'cp', 'idTag'])
          if (!cells.includes(need)) errors.push({ line, message: `header lacks column "${need}"` });
        return;
      }
      if (cells.length !== header.length) {
        errors.push({ line, message: `${cells.length} cells, the header has ${header.length}` });
        return;
      }
      raw = {};
      header.forEach((h, k) => {
        if (cells[k] !== '') (raw as Record<string, unknown>)[h] = cells[k];
      });
    }
    const r = checkRaw(raw, line);
    if ('message' in r) errors.push(r);
    else checked.push(r);
  });
  const numeric = checked.filter((c) => typeof c.at === 'number');
  if (numeric.length > 0 && numeric.length < checked.length) {
    const odd = checked.find((c) => typeof c.at === 'string');
    errors.push({ line: odd?.req.line ?? 1, message: '"at" mixes seconds and ISO times: use one kind' });
  }
  const times = checked.map((c) => (typeof c.at === 'number' ? c.at * 1000 : Date.parse(c.at)));
  const t0 = numeric.length === checked.length ? 0 : Math.min(...times);
  const requests = checked.map((c, i) => ({ ...c.req, atMs: (times[i] as number) - t0 }));
  requests.sort((a, b) => a.atMs - b.atMs || a.line - b.line);
  return { requests, errors };
}

/** The command body a driver app posts for a request. */
export function startBody(r: ChargeRequest): Record<string, unknown> {
  const until: Record<string, number> = {};
  if (r.kWh !== undefined) until.kWh = r.kWh;
  if (r.durationS !== undefined) until.durationS = r.durationS;
  return {
    command: 'start',
    idTag: r.idTag,
    ...(r.connector !== undefined ? { connectorId: r.connector } : {}),
    until,
  };
}

export interface ReplayResult {
  line: number;
  cp: string;
  status: number;
  /** The API's answer (commandId) or its error message. */
  detail: string;
}

/** Log in as a user of the API; returns the access token. */
export async function driverLogin(api: string, login: string, password: string): Promise<string> {
  const r = await fetch(`${api.replace(/\/+$/, '')}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ login, password }),
  });
  const body = (await r.json().catch(() => ({}))) as { accessToken?: string; error?: string };
  if (r.status !== 200 || !body.accessToken)
    throw new Error(`login as ${login} failed: ${r.status} ${body.error ?? ''}`.trim());
  return body.accessToken;
}

/** Send the requests at their times (divided by `speed`); one result per request. */
export async function replayChargeRequests(
  api: string,
  token: string,
  requests: readonly ChargeRequest[],
  opts: { speed?: number; onResult?: (r: ReplayResult) => void } = {},
): Promise<ReplayResult[]> {
  const base = api.replace(/\/+$/, '');
  const speed = opts.speed ?? 1;
  const start = Date.now();
  const out: ReplayResult[] = [];
  for (const r of requests) {
    const wait = start + r.atMs / speed - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const [site, asset] = r.cp.split('/') as [string, string];
    let result: ReplayResult;
    try {
      const res = await fetch(
        `${base}/chargers/${encodeURIComponent(site)}/${encodeURIComponent(asset)}/commands`,
        {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify(startBody(r)),
        },
      );
      const body = (await res.json().catch(() => ({}))) as {
        commandId?: string;
        error?: string;
        message?: string;
      };
      result = {
        line: r.line,
        cp: r.cp,
        status: res.status,
        detail: body.commandId ?? body.error ?? body.message ?? '',
      };
    } catch (err) {
      result = { line: r.line, cp: r.cp, status: 0, detail: (err as Error).message };
    }
    out.push(result);
    opts.onResult?.(result);
  }
  return out;
}

export const DRIVERS_USAGE = `Usage: evtwin-sim drivers --requests FILE [options]

Replays a file of charge requests against the twin API as a driver app would: logs in, then posts
a start command per request to ${TWIN_API_BASE}/chargers/{site}/{cp}/commands with
"until": {kWh, durationS}; the central system stops the session when it is reached.

  --requests FILE    CSV (header: at,cp,connector,idTag,kWh,duration) or JSON Lines with those fields;
                     at = seconds after the start or an ISO 8601 time; kWh and/or duration (s)
  --api URL          API base (default http://127.0.0.1:1880${TWIN_API_BASE})
  --login USER       API user (role lead or head)
  --password-env VAR environment variable holding the password (default EVTWIN_DRIVER_PASSWORD)
  --speed X          replay X times faster than the file's times (default 1)
  --check            only validate the file
  -h, --help         this text
`;

export async function driversMain(
  argv: string[],
  out: (s: string) => void = (s) => process.stdout.write(s),
): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        requests: { type: 'string' },
        api: { type: 'string', default: `http://127.0.0.1:1880${TWIN_API_BASE}` },
        login: { type: 'string' },
        'password-env': { type: 'string', default: 'EVTWIN_DRIVER_PASSWORD' },
        speed: { type: 'string', default: '1' },
        check: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    out(`evtwin-sim drivers: ${(err as Error).message}\n`);
    return 2;
  }
  if (values.help) {
    out(DRIVERS_USAGE);
    return 0;
  }
  const speed = Number(values.speed);
  if (!values.requests || !Number.isFinite(speed) || speed <= 0) {
    out('evtwin-sim drivers: --requests FILE is required; --speed must be a positive number\n');
    return 2;
  }
  let text: string;
  try {
    text = readFileSync(values.requests, 'utf8');
  } catch (err) {
    out(`evtwin-sim drivers: ${(err as Error).message}\n`);
    return 2;
  }
  const { requests, errors } = parseChargeRequests(text);
  if (errors.length > 0) {
    for (const e of errors.slice(0, 50)) out(`${values.requests}:${e.line}: ${e.message}\n`);
    out(`${errors.length} error(s); nothing sent\n`);
    return 2;
  }
  out(`${requests.length} charge requests valid\n`);
  if (values.check) return 0;
  const password = process.env[values['password-env']];
  if (!values.login || !password) {
    out(`evtwin-sim drivers: --login and the password in $${values['password-env']} are required\n`);
    return 2;
  }
  let token: string;
  try {
    token = await driverLogin(values.api, values.login, password);
  } catch (err) {
    out(`evtwin-sim drivers: ${(err as Error).message}\n`);
    return 1;
  }
  const results = await replayChargeRequests(values.api, token, requests, {
    speed,
    onResult: (r) => out(`line ${r.line} ${r.cp}: ${r.status} ${r.detail}\n`),
  });
  const accepted = results.filter((r) => r.status === 202).length;
  out(`done: ${accepted} accepted, ${results.length - accepted} refused or failed\n`);
  return accepted === results.length ? 0 : 1;
}
