import React, { useEffect, useMemo, useState, type ChangeEvent } from 'react';
import type { QueryEditorProps, SelectableValue } from '@grafana/data';
import { getTemplateSrv } from '@grafana/runtime';
import {
  Alert,
  InlineField,
  InlineFieldRow,
  InlineSwitch,
  Input,
  MultiSelect,
  RadioButtonGroup,
  Select,
} from '@grafana/ui';
import { describeApiError } from '../api/client';
import type { Aggregation, AssetsResponse, Fill, GrievanceStatus, QueryType } from '../api/contract';
import type { DataSource } from '../datasource';
import { DEFAULT_QUERY, QUERY_TYPE_OPTIONS, type EvtwinOptions, type EvtwinQuery } from '../types';

type Props = QueryEditorProps<DataSource, EvtwinQuery, EvtwinOptions>;

const AGGREGATIONS: { value: Aggregation; label: string }[] = [
  { value: 'mean', label: 'Mean' },
  { value: 'min', label: 'Min' },
  { value: 'max', label: 'Max' },
  { value: 'last', label: 'Last' },
];
const FILLS: { value: Fill; label: string; description: string }[] = [
  { value: 'null', label: 'Gaps', description: 'empty intervals stay empty (null)' },
  { value: 'none', label: 'Skip', description: 'empty intervals are left out' },
  { value: 'previous', label: 'Previous', description: 'repeat the previous value' },
  { value: 'linear', label: 'Linear', description: 'interpolate' },
  { value: 'zero', label: 'Zero', description: 'fill with 0' },
];
const STATUSES: { value: GrievanceStatus | ''; label: string }[] = [
  { value: '', label: 'Any' },
  { value: 'open', label: 'Open' },
  { value: 'resolved', label: 'Resolved' },
];
const WITH_METRICS: QueryType[] = ['timeseries', 'latest'];
const WITH_EVENTS: QueryType[] = ['events', 'annotations'];
const WITH_LIMIT: QueryType[] = [
  'events',
  'annotations',
  'assets',
  'chargers',
  'sessions',
  'recommendations',
  'grievances',
];

/** `$site`, `$asset`, …: the dashboard's variables, offered in every picker. */
function variableOptions(): SelectableValue<string>[] {
  try {
    return getTemplateSrv()
      .getVariables()
      .map((v) => ({ label: `$${v.name}`, value: `$${v.name}`, description: 'template variable' }));
  } catch {
    return [];
  }
}

const splitList = (v: string): string[] =>
  v
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');

export function QueryEditor({ query, onChange, onRunQuery, datasource }: Props) {
  const q: EvtwinQuery = { ...DEFAULT_QUERY, ...query };
  const type: QueryType = q.queryType ?? 'timeseries';
  const [catalogue, setCatalogue] = useState<AssetsResponse | undefined>();
  const [loadError, setLoadError] = useState<string | undefined>();

  useEffect(() => {
    let alive = true;
    datasource.getCatalogue().then(
      (c) => alive && setCatalogue(c),
      (err: unknown) => alive && setLoadError(describeApiError(err).message),
    );
    return () => {
      alive = false;
    };
  }, [datasource]);

  const vars = useMemo(variableOptions, []);
  // The pickers narrow one another: lines of the chosen site, assets of the chosen site and line.
  const inSite = (site: string | undefined) => !q.site || q.site.startsWith('$') || site === q.site;
  const inLine = (line: string | undefined) => !q.line || q.line.startsWith('$') || line === q.line;
  const sites = catalogue?.sites ?? [];
  const assets = (catalogue?.assets ?? []).filter(
    (a) => inSite(a.site) && inLine(a.line) && (!q.kind || q.kind.startsWith('$') || a.kind === q.kind),
  );
  const siteOptions = [...sites.map((s) => ({ label: s.name, value: s.id, description: s.id })), ...vars];
  const lineOptions = [
    ...sites
      .filter((s) => inSite(s.id))
      .flatMap((s) => s.lines.map((l) => ({ label: l.name, value: l.id, description: `${s.id}/${l.id}` }))),
    ...vars,
  ];
  const kindOptions = [
    ...[...new Set((catalogue?.assets ?? []).map((a) => a.kind))].sort().map((k) => ({ label: k, value: k })),
    ...vars,
  ];
  const assetOptions = [...assets.map((a) => ({ label: a.name, value: a.ref, description: a.ref })), ...vars];
  const metricUnits = new Map<string, string>();
  for (const a of assets) for (const [m, u] of Object.entries(a.metrics)) metricUnits.set(m, u);
  const metricOptions = [
    ...[...metricUnits.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([m, u]) => ({ label: m, value: m, description: u || undefined })),
    ...vars,
  ];

  /** Apply a change and run the query (pickers and switches). */
  const set = (patch: Partial<EvtwinQuery>) => {
    onChange({ ...q, ...patch });
    onRunQuery();
  };
  /** Apply a change; the query runs on blur (text inputs). */
  const edit = (patch: Partial<EvtwinQuery>) => onChange({ ...q, ...patch });
  const values = (v: Array<SelectableValue<string>>) =>
    v.map((x) => x.value).filter((x): x is string => typeof x === 'string');

  return (
    <>
      {loadError && (
        <Alert title="The pickers could not load the asset list" severity="warning">
          {loadError}
        </Alert>
      )}
      <InlineFieldRow>
        <InlineField label="Query type" labelWidth={14}>
          <Select
            inputId="evtwin-query-type"
            aria-label="Query type"
            width={24}
            options={QUERY_TYPE_OPTIONS}
            value={type}
            onChange={(v) => set({ queryType: v.value })}
          />
        </InlineField>
        {type !== 'annotations' && (
          <InlineField label="Live" tooltip="Re-run every second; the panel stays current within 2 s">
            <InlineSwitch
              id="evtwin-query-live"
              aria-label="Live"
              value={q.live ?? false}
              onChange={(e) => set({ live: e.currentTarget.checked })}
            />
          </InlineField>
        )}
      </InlineFieldRow>
      <InlineFieldRow>
        <InlineField label="Site" labelWidth={14}>
          <Select
            inputId="evtwin-query-site"
            aria-label="Site"
            width={24}
            isClearable
            allowCustomValue
            placeholder="all sites"
            options={siteOptions}
            value={q.site ?? null}
            onChange={(v) => set({ site: v?.value, line: undefined, assets: undefined })}
          />
        </InlineField>
        <InlineField label="Line">
          <Select
            inputId="evtwin-query-line"
            aria-label="Line"
            width={20}
            isClearable
            allowCustomValue
            placeholder="all lines"
            options={lineOptions}
            value={q.line ?? null}
            onChange={(v) => set({ line: v?.value, assets: undefined })}
          />
        </InlineField>
        <InlineField label="Kind">
          <Select
            inputId="evtwin-query-kind"
            aria-label="Kind"
            width={20}
            isClearable
            allowCustomValue
            placeholder="all kinds"
            options={kindOptions}
            value={q.kind ?? null}
            onChange={(v) => set({ kind: v?.value })}
          />
        </InlineField>
        <InlineField label="Assets" grow>
          <MultiSelect
            inputId="evtwin-query-assets"
            aria-label="Assets"
            allowCustomValue
            placeholder="all assets in scope"
            options={assetOptions}
            value={q.assets ?? []}
            onChange={(v) => set({ assets: values(v) })}
          />
        </InlineField>
      </InlineFieldRow>
      {WITH_METRICS.includes(type) && (
        <InlineFieldRow>
          <InlineField
            label="Metrics"
            labelWidth={14}
            grow
            invalid={type === 'timeseries' && (q.metrics ?? []).length === 0}
            error="choose at least one metric"
          >
            <MultiSelect
              inputId="evtwin-query-metrics"
              aria-label="Metrics"
              allowCustomValue
              placeholder={type === 'latest' ? 'all metrics' : 'choose metrics'}
              options={metricOptions}
              value={q.metrics ?? []}
              onChange={(v) => set({ metrics: values(v) })}
            />
          </InlineField>
        </InlineFieldRow>
      )}
      {type === 'timeseries' && (
        <InlineFieldRow>
          <InlineField label="Aggregation" labelWidth={14}>
            <RadioButtonGroup
              options={AGGREGATIONS}
              value={q.aggregation ?? 'mean'}
              onChange={(v) => set({ aggregation: v })}
            />
          </InlineField>
          <InlineField
            label="Interval"
            tooltip="Empty: the panel's interval. The API raises it to the rollup's step for long ranges."
          >
            <Input
              id="evtwin-query-interval"
              aria-label="Interval"
              width={12}
              placeholder="auto"
              value={q.interval ?? ''}
              onChange={(e: ChangeEvent<HTMLInputElement>) => edit({ interval: e.target.value || undefined })}
              onBlur={onRunQuery}
            />
          </InlineField>
          <InlineField label="Fill">
            <Select
              inputId="evtwin-query-fill"
              aria-label="Fill"
              width={16}
              options={FILLS}
              value={q.fill ?? 'null'}
              onChange={(v) => set({ fill: v.value })}
            />
          </InlineField>
        </InlineFieldRow>
      )}
      {WITH_EVENTS.includes(type) && (
        <InlineFieldRow>
          <InlineField label="Event types" labelWidth={14} tooltip="Comma-separated, e.g. power_spike, alert">
            <Input
              id="evtwin-query-types"
              aria-label="Event types"
              width={32}
              placeholder="all types"
              value={(q.types ?? []).join(', ')}
              onChange={(e: ChangeEvent<HTMLInputElement>) => edit({ types: splitList(e.target.value) })}
              onBlur={onRunQuery}
            />
          </InlineField>
          <InlineField label="Severities" tooltip="Comma-separated, e.g. warning, critical">
            <Input
              id="evtwin-query-severities"
              aria-label="Severities"
              width={24}
              placeholder="all"
              value={(q.severities ?? []).join(', ')}
              onChange={(e: ChangeEvent<HTMLInputElement>) => edit({ severities: splitList(e.target.value) })}
              onBlur={onRunQuery}
            />
          </InlineField>
        </InlineFieldRow>
      )}
      {(type === 'grievances' || type === 'assets' || WITH_LIMIT.includes(type)) && (
        <InlineFieldRow>
          {type === 'grievances' && (
            <InlineField label="Status" labelWidth={14}>
              <RadioButtonGroup<GrievanceStatus | ''>
                options={STATUSES}
                value={q.status ?? ''}
                onChange={(v) => set({ status: v === '' ? undefined : v })}
              />
            </InlineField>
          )}
          {type === 'assets' && (
            <InlineField label="With state" labelWidth={14} tooltip="Add last seen, health and failure risk">
              <InlineSwitch
                id="evtwin-query-state"
                aria-label="With state"
                value={q.state ?? false}
                onChange={(e) => set({ state: e.currentTarget.checked })}
              />
            </InlineField>
          )}
          {WITH_LIMIT.includes(type) && (
            <InlineField label="Limit" tooltip="Most rows to return (default 10000)">
              <Input
                id="evtwin-query-limit"
                aria-label="Limit"
                type="number"
                min={1}
                width={12}
                placeholder="10000"
                value={q.limit ?? ''}
                onChange={(e: ChangeEvent<HTMLInputElement>) =>
                  edit({ limit: e.target.value === '' ? undefined : Number(e.target.value) })
                }
                onBlur={onRunQuery}
              />
            </InlineField>
          )}
        </InlineFieldRow>
      )}
    </>
  );
}
