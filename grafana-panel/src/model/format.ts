/** Text shown for values in labels, tooltips and popups. */
import { formattedValueToString, getValueFormat } from '@grafana/data';
import type { AssetView } from './assets';

export function formatNumber(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(2);
  if (Number.isInteger(v)) return String(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/** A value in its Grafana unit (`celsius` → °C, `kwatt` → kW, `suffix:L/s` → L/s), as Grafana's panels show it. */
export function formatValue(v: number, unit?: string): string {
  if (!unit || unit === 'none' || unit === 'short') return formatNumber(v);
  const a = Math.abs(v);
  const decimals = Number.isInteger(v) ? 0 : a >= 100 ? 0 : a >= 10 ? 1 : 2;
  return formattedValueToString(getValueFormat(unit)(v, decimals));
}

/** Label lines: the listed fields (comma-separated), or the colour field's value. */
export function labelValues(a: AssetView, fields: string): string[] {
  const wanted = fields
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  if (wanted.length === 0) {
    if (a.colorValue === null) return a.status ? [a.status] : [];
    return [`${a.colorField ?? 'value'} ${formatNumber(a.colorValue)}`];
  }
  const out: string[] = [];
  for (const w of wanted) {
    const v = a.values.find((x) => x.name.toLowerCase() === w);
    if (v) out.push(`${v.name} ${formatValue(v.value, v.unit)}`);
    else if (w === 'status' && a.status) out.push(a.status);
  }
  return out;
}

/** Rows of a tooltip or popup: identity, status, then every value. */
export function detailRows(a: AssetView): [string, string][] {
  const rows: [string, string][] = [];
  if (a.site) rows.push(['site', a.site]);
  rows.push(['kind', a.kind]);
  if (a.status !== undefined) rows.push(['status', a.status]);
  if (a.score !== null) rows.push(['anomaly score', formatNumber(a.score)]);
  for (const v of a.values) {
    if (v.name === 'score' || v.name === 'status') continue;
    rows.push([v.name, formatValue(v.value, v.unit)]);
  }
  if (a.time !== undefined && a.time > 1e11)
    rows.push(['updated', new Date(a.time).toISOString().replace('T', ' ').slice(0, 19)]);
  return rows;
}
