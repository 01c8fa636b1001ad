/** Example flows of a node package: read, check their shape, and find the core nodes they use. */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { FlowNode } from './nodered';

export interface Example {
  /** The menu entry under Import > Examples (file name without .json). */
  name: string;
  file: string;
  flow: FlowNode[];
}

export function readExamples(examplesDir: string): Example[] {
  return readdirSync(examplesDir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const file = join(examplesDir, f);
      return {
        name: f.replace(/\.json$/, ''),
        file,
        flow: JSON.parse(readFileSync(file, 'utf8')) as FlowNode[],
      };
    });
}

/** Shape problems of an exported flow: an array of nodes, unique ids, wires that reach existing nodes. */
export function flowProblems(flow: unknown): string[] {
  if (!Array.isArray(flow)) return ['a flow export is an array of nodes'];
  const problems: string[] = [];
  const ids = new Set<string>();
  for (const [i, n] of flow.entries()) {
    const node = n as Partial<FlowNode>;
    if (typeof node.id !== 'string' || node.id === '') problems.push(`node ${i} has no id`);
    else if (ids.has(node.id)) problems.push(`duplicate id ${node.id}`);
    else ids.add(node.id);
    if (typeof node.type !== 'string' || node.type === '') problems.push(`node ${i} has no type`);
  }
  for (const n of flow as Partial<FlowNode>[]) {
    for (const [port, targets] of (n.wires ?? []).entries()) {
      for (const t of targets)
        if (!ids.has(t)) problems.push(`${n.id} output ${port + 1} is wired to missing ${t}`);
    }
  }
  return problems;
}

/** Config-node references: properties whose value is the id of another node in the flow. */
export function danglingConfigRefs(flow: FlowNode[], props: Record<string, string[]>): string[] {
  const ids = new Set(flow.map((n) => n.id));
  const problems: string[] = [];
  for (const n of flow) {
    for (const prop of props[n.type] ?? []) {
      const ref = n[prop];
      if (typeof ref !== 'string' || !ids.has(ref))
        problems.push(`${n.type} ${n.id}: ${prop} refers to missing ${String(ref)}`);
    }
  }
  return problems;
}

/** Put the flow on one tab, as the editor does when it imports an example into the current tab. */
export function onTab(flow: FlowNode[], tabId: string, label: string): FlowNode[] {
  const tabbed = flow.map((n) => ('z' in n && n.z !== '' ? { ...n, z: tabId } : { ...n }));
  return [{ id: tabId, type: 'tab', label, disabled: false, info: '' }, ...tabbed];
}

/**
 * Node-RED's core node files by the types they register (`inject`, `debug`, `mqtt in`, ...), found in
 * the @node-red/nodes package that the given node-red installation uses.
 */
export function coreNodeFiles(nodeRedMain: string): Map<string, string> {
  const nodesPkg = require.resolve('@node-red/nodes/package.json', { paths: [dirname(nodeRedMain)] });
  const coreDir = join(dirname(nodesPkg), 'core');
  const byType = new Map<string, string>();
  for (const group of readdirSync(coreDir)) {
    let entries: string[];
    try {
      entries = readdirSync(join(coreDir, group));
    } catch {
      continue;
    }
    for (const f of entries.filter((e) => e.endsWith('.js'))) {
      const file = join(coreDir, group, f);
      for (const m of readFileSync(file, 'utf8').matchAll(/registerType\(\s*["']([^"']+)["']/g)) {
        byType.set(m[1] as string, file);
      }
    }
  }
  return byType;
}

/** Point an example's broker and InfluxDB config nodes elsewhere, as a user edits them before deploying. */
export function withEndpoints(flow: FlowNode[], ends: { mqttPort: number; influxUrl: string }): FlowNode[] {
  return flow.map((n) => {
    if (n.type === 'mqtt-broker') return { ...n, broker: '127.0.0.1', port: String(ends.mqttPort) };
    if (n.type === 'evtwin-influx') return { ...n, url: ends.influxUrl };
    return n;
  });
}

/** The row of `measurement` at exactly `ts` (epoch ms) in InfluxDB 1.x, as column → value; polls until it shows. */
export async function influxRowAt(
  influxUrl: string,
  db: string,
  measurement: string,
  ts: number,
  timeoutMs = 15_000,
): Promise<Record<string, unknown> | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const q = new URL('/query', influxUrl);
    q.searchParams.set('db', db);
    q.searchParams.set('epoch', 'ms');
    q.searchParams.set('q', `SELECT * FROM "${measurement}" WHERE time = ${ts}ms`);
    const body = (await (await fetch(q)).json()) as {
      results: { series?: { columns: string[]; values: unknown[][] }[] }[];
    };
    const series = body.results[0]?.series?.[0];
    if (series) return Object.fromEntries(series.columns.map((c, i) => [c, series.values[0]?.[i]]));
    if (Date.now() > deadline) return undefined;
    await new Promise((r) => setTimeout(r, 200));
  }
}
