/**
 * The tamper-evident audit chain (pure: hashing, no I/O). Each JSONL line is the canonical JSON of
 * {seq, ts, actor, action, target?, outcome, detail?, prev, hash} where
 * hash = sha256hex(prev + canonicalJSON(entry without hash and prev)) and prev is the previous line's hash
 * (GENESIS for the first). Changing, inserting, deleting or reordering a line breaks the chain at that
 * line. Cutting lines off the end cannot be seen in the file alone: compare the count and last hash
 * with a copy kept elsewhere (the InfluxDB `audit` mirror holds every hash).
 */
import { createHash } from 'node:crypto';
import type { AuditEvent, AuditOutcome } from './auditEvent';

export const GENESIS_HASH = '0'.repeat(64);

/** One line of the audit file. */
export interface AuditEntry extends AuditEvent {
  /** 1 for the first line, +1 per line. */
  seq: number;
  prev: string;
  hash: string;
}

type Json = string | number | boolean | null | Json[] | { [key: string]: Json | undefined };

/** JSON with keys sorted at every level and no whitespace; undefined members dropped; refuses non-finite numbers. */
export function canonicalJSON(value: Json): string {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`canonicalJSON: ${value} has no JSON form`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJSON).join(',')}]`;
  const keys = Object.keys(value)
    .filter((k) => value[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJSON(value[k] as Json)}`).join(',')}}`;
}

const OUTCOMES: readonly AuditOutcome[] = ['ok', 'denied', 'error'];

/** The hashed part of an entry: the event and its sequence number (undefined members dropped). */
function body(seq: number, e: AuditEvent): Json {
  return {
    seq,
    ts: e.ts,
    actor: e.actor,
    action: e.action,
    target: e.target,
    outcome: e.outcome,
    detail: e.detail,
  };
}

export function chainHash(prev: string, seq: number, event: AuditEvent): string {
  return createHash('sha256')
    .update(prev + canonicalJSON(body(seq, event)))
    .digest('hex');
}

/** The entry that follows `prev` (the last entry, or undefined for an empty log). */
export function nextEntry(prev: Pick<AuditEntry, 'seq' | 'hash'> | undefined, event: AuditEvent): AuditEntry {
  const seq = (prev?.seq ?? 0) + 1;
  const prevHash = prev?.hash ?? GENESIS_HASH;
  const entry: AuditEntry = {
    seq,
    ts: event.ts,
    actor: event.actor,
    action: event.action,
    outcome: event.outcome,
    prev: prevHash,
    hash: chainHash(prevHash, seq, event),
  };
  if (event.target !== undefined) entry.target = event.target;
  if (event.detail !== undefined) entry.detail = event.detail;
  return entry;
}

/** The JSONL line of an entry (with its trailing newline). */
export function entryLine(entry: AuditEntry): string {
  return canonicalJSON(entry as unknown as Json) + '\n';
}

const ENTRY_KEYS = new Set(['seq', 'ts', 'actor', 'action', 'target', 'outcome', 'detail', 'prev', 'hash']);
const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parse one line into an entry, or say why it is not one (shape only: the chain is checked by verifyChain). */
export function parseEntry(line: string): AuditEntry | string {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return 'not JSON';
  }
  if (!isRecord(v)) return 'not a JSON object';
  for (const k of Object.keys(v)) if (!ENTRY_KEYS.has(k)) return `unexpected field "${k}"`;
  if (!Number.isSafeInteger(v.seq)) return 'seq is not an integer';
  if (typeof v.ts !== 'number' || !Number.isFinite(v.ts)) return 'ts is not a number';
  if (typeof v.actor !== 'string' || typeof v.action !== 'string') return 'actor or action is not text';
  if (v.target !== undefined && typeof v.target !== 'string') return 'target is not text';
  if (!OUTCOMES.includes(v.outcome as AuditOutcome)) return 'outcome is not ok, denied or error';
  if (v.detail !== undefined) {
    if (!isRecord(v.detail)) return 'detail is not an object';
    for (const d of Object.values(v.detail))
      if (!['string', 'number', 'boolean'].includes(typeof d)) return 'detail holds a non-scalar';
  }
  if (typeof v.prev !== 'string' || typeof v.hash !== 'string') return 'prev or hash is not text';
  return v as unknown as AuditEntry;
}

export type ChainVerdict =
  | { ok: true; entries: number; lastHash: string; lastSeq: number }
  | {
      ok: false;
      /** 1-based line number of the first bad line. */
      line: number;
      /** tampered: a complete line that breaks the chain; truncated: the last line ends without a newline. */
      kind: 'tampered' | 'truncated';
      reason: string;
      /** Entries before the bad line that verified. */
      entries: number;
    };

/**
 * Verify a whole audit file's text: the first line that breaks the chain, or a torn last line (a crash
 * mid-append). An empty text is a valid empty log.
 */
export function verifyChain(text: string): ChainVerdict {
  const lines = text.split('\n');
  const complete = text.endsWith('\n') || text === '';
  // split leaves "" after a final newline; a torn tail is the last element otherwise.
  const tail = lines.pop() ?? '';
  let prev = GENESIS_HASH;
  let seq = 0;
  for (let i = 0; i < lines.length; i++) {
    const bad = checkLine(lines[i] ?? '', prev, seq + 1);
    if (bad) return { ok: false, line: i + 1, kind: 'tampered', reason: bad, entries: seq };
    seq += 1;
    prev = (JSON.parse(lines[i] ?? '') as AuditEntry).hash;
  }
  if (!complete) {
    return {
      ok: false,
      line: lines.length + 1,
      kind: 'truncated',
      reason: `the last line has no newline (${Buffer.byteLength(tail)} bytes): a write was cut short`,
      entries: seq,
    };
  }
  return { ok: true, entries: seq, lastHash: prev, lastSeq: seq };
}

/** Why one complete line does not continue the chain at `prev`, or undefined when it does. */
export function checkLine(line: string, prev: string, expectedSeq: number): string | undefined {
  const e = parseEntry(line);
  if (typeof e === 'string') return e;
  if (e.seq !== expectedSeq) return `seq ${e.seq}, expected ${expectedSeq}`;
  if (e.prev !== prev) return 'prev does not match the hash of the line before';
  if (chainHash(prev, e.seq, e) !== e.hash) return 'hash does not match the content';
  // The same content in another spelling (spaces, key order) would still hash alike: insist on the canonical line.
  if (entryLine(e) !== line + '\n') return 'not in canonical form';
  return undefined;
}
