import type { DataQuery, DataSourceJsonData } from '@grafana/data';
import type { Aggregation, Fill, GrievanceStatus, QueryType } from './api/contract';

/** One panel query. Every text field may hold template variables ($site, $asset, …). */
export interface EvtwinQuery extends DataQuery {
  queryType?: QueryType;
  site?: string;
  line?: string;
  /** `site/asset` refs, or bare asset ids when a site is set. */
  assets?: string[];
  kind?: string;
  /** timeseries (required) and latest (optional). */
  metrics?: string[];
  aggregation?: Aggregation;
  /** e.g. `1m`; empty: Grafana's interval for the panel. */
  interval?: string;
  fill?: Fill;
  /** events and annotations: event types and severities. */
  types?: string[];
  severities?: string[];
  /** grievances: open or resolved. */
  status?: GrievanceStatus;
  /** assets: include health, failure risk and last seen. */
  state?: boolean;
  limit?: number;
  /** Re-run every second so the panel stays current (the time range slides with the clock). */
  live?: boolean;
}

export const DEFAULT_QUERY: Partial<EvtwinQuery> = {
  queryType: 'timeseries',
  aggregation: 'mean',
  fill: 'null',
};

/** The query types the editor offers, in the order it offers them. */
export const QUERY_TYPE_OPTIONS: { value: QueryType; label: string; description: string }[] = [
  { value: 'timeseries', label: 'Time series', description: 'Metrics over time, aggregated per interval' },
  { value: 'latest', label: 'Latest state', description: 'Last value of each metric, health, failure risk' },
  { value: 'events', label: 'Events', description: 'Anomalies, alerts and grievance events' },
  { value: 'annotations', label: 'Annotations', description: 'Events shaped as annotations' },
  { value: 'assets', label: 'Assets', description: 'The asset model you may see' },
  { value: 'chargers', label: 'Chargers', description: 'Charge points and their latest state' },
  { value: 'sessions', label: 'Sessions', description: 'Charging sessions' },
  { value: 'recommendations', label: 'Recommendations', description: 'Energy recommendations' },
  { value: 'grievances', label: 'Grievances', description: 'Citizen grievances in your scope' },
];

export interface EvtwinOptions extends DataSourceJsonData {
  /** Node-RED's base URL as Grafana's server reaches it, e.g. http://node-red:1880. */
  url?: string;
}

/** Kept by Grafana's server; the data-proxy route injects it, the browser never sees it. */
export interface EvtwinSecureJsonData {
  serviceToken?: string;
}

export type VariableTarget = 'site' | 'line' | 'asset' | 'metric';

/** A template-variable query: which list, narrowed by site/line/kind (each may hold variables). */
export interface EvtwinVariableQuery extends DataQuery {
  target: VariableTarget;
  site?: string;
  line?: string;
  kind?: string;
  /** asset: value the bare id (default, what the asset dashboard takes with $site) or the `site/asset` ref. */
  valueAs?: 'id' | 'ref';
}
