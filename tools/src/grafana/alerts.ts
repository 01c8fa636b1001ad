/**
 * Grafana-managed alert rules on the built-in InfluxDB datasource (a frontend-only datasource such as
 * ours cannot back alert rules) and the notification policies, in Grafana's file-provisioning format
 * (apiVersion 1: `groups` of rules, `policies`). generate.ts writes them to provisioning/grafana/alerting/;
 * the test runs every rule's InfluxQL against a real influxd.
 *
 * Each rule: A = InfluxQL grouped by site and asset (or cp), so every series becomes one alert instance
 * labelled with its tags; B = reduce A to its last value; C = threshold on B (the condition).
 */
import { ALERT_FOLDER_TITLE, INFLUX_DS, type TeamRole } from './model';

export interface AlertRuleSpec {
  uid: string;
  title: string;
  /** InfluxQL with $timeFilter; series grouped by the tags that become labels. */
  query: string;
  /** Seconds back from now that $timeFilter covers. */
  rangeS: number;
  /** B's reducer. */
  reducer: 'last' | 'max' | 'min' | 'sum';
  threshold: { type: 'gt' | 'lt'; value: number };
  for: string;
  noDataState: 'NoData' | 'Alerting' | 'OK';
  severity: 'warning' | 'critical';
  role: TeamRole;
  summary: string;
}

export const ALERT_RULES: readonly AlertRuleSpec[] = [
  {
    uid: 'evtwin-failure-risk-high',
    title: 'Failure risk high',
    query:
      'SELECT max("failure_risk") FROM "scores" WHERE $timeFilter GROUP BY time(1m), "site", "asset" fill(none)',
    rangeS: 600,
    reducer: 'last',
    threshold: { type: 'gt', value: 0.7 },
    for: '2m',
    noDataState: 'OK',
    severity: 'critical',
    role: 'lead',
    summary:
      'Failure risk of {{ $labels.site }}/{{ $labels.asset }} is {{ humanizePercentage $values.B.Value }}',
  },
  {
    uid: 'evtwin-charger-faulted',
    title: 'Charger faulted',
    query: `SELECT count("online") FROM "charger" WHERE $timeFilter AND "status" = 'faulted' GROUP BY "site", "cp"`,
    rangeS: 300,
    reducer: 'last',
    threshold: { type: 'gt', value: 0 },
    for: '0s',
    noDataState: 'OK',
    severity: 'critical',
    role: 'lead',
    summary: 'Charge point {{ $labels.site }}/{{ $labels.cp }} reported Faulted',
  },
  {
    // Readings per minute (0 where a series seen in the last hour sent nothing), averaged over the last
    // five buckets: 0 means no reading for about five minutes. An asset silent for over an hour drops
    // out of the query (its alert resolves as missing); all silent at once is NoData → Alerting.
    uid: 'evtwin-sensor-offline',
    title: 'Sensor offline',
    query:
      'SELECT moving_average(count("seq"), 5) FROM "telemetry" WHERE $timeFilter GROUP BY time(1m), "site", "asset" fill(0)',
    rangeS: 3600,
    reducer: 'last',
    threshold: { type: 'lt', value: 0.001 },
    for: '1m',
    noDataState: 'Alerting',
    severity: 'warning',
    role: 'worker',
    summary: '{{ $labels.site }}/{{ $labels.asset }} sent no reading for about five minutes',
  },
  {
    // evtwin-score writes an event of type "bounds" (asset model bounds) or "threshold" (user-set limits).
    uid: 'evtwin-bounds-breached',
    title: 'Bounds breached',
    query: `SELECT count("observed") FROM "events" WHERE $timeFilter AND ("type" = 'bounds' OR "type" = 'threshold') GROUP BY "site", "asset"`,
    rangeS: 300,
    reducer: 'last',
    threshold: { type: 'gt', value: 0 },
    for: '0s',
    noDataState: 'OK',
    severity: 'warning',
    role: 'worker',
    summary: '{{ $labels.site }}/{{ $labels.asset }} is outside its bounds',
  },
  {
    uid: 'evtwin-anomaly-burst',
    title: 'Anomaly burst',
    query:
      'SELECT count("score") FROM "scores" WHERE $timeFilter AND "anomaly" = true GROUP BY "site", "asset"',
    rangeS: 600,
    reducer: 'last',
    threshold: { type: 'gt', value: 5 },
    for: '0s',
    noDataState: 'OK',
    severity: 'warning',
    role: 'lead',
    summary: 'More than 5 anomalous readings from {{ $labels.site }}/{{ $labels.asset }} in 10 minutes',
  },
];

/** A server-side expression step of a rule (Grafana's `__expr__` datasource). */
function expression(refId: string, model: Record<string, unknown>): Record<string, unknown> {
  return {
    refId,
    relativeTimeRange: { from: 0, to: 0 },
    datasourceUid: '__expr__',
    model: { refId, datasource: { type: '__expr__', uid: '__expr__' }, ...model },
  };
}

/** Grafana's export format of one rule. */
export function ruleToProvisioning(r: AlertRuleSpec): Record<string, unknown> {
  return {
    uid: r.uid,
    title: r.title,
    condition: 'C',
    data: [
      {
        refId: 'A',
        relativeTimeRange: { from: r.rangeS, to: 0 },
        datasourceUid: INFLUX_DS.uid,
        model: {
          refId: 'A',
          datasource: { ...INFLUX_DS },
          query: r.query,
          rawQuery: true,
          resultFormat: 'time_series',
          intervalMs: 1000,
          maxDataPoints: 43200,
        },
      },
      expression('B', { type: 'reduce', expression: 'A', reducer: r.reducer, settings: { mode: 'dropNN' } }),
      expression('C', {
        type: 'threshold',
        expression: 'B',
        conditions: [{ evaluator: { type: r.threshold.type, params: [r.threshold.value] } }],
      }),
    ],
    noDataState: r.noDataState,
    execErrState: 'Error',
    for: r.for,
    annotations: { summary: r.summary },
    // site and asset (or cp) come from the series' tags; role routes the notification.
    labels: { role: r.role, severity: r.severity },
    isPaused: false,
  };
}

export function alertRulesFile(): Record<string, unknown> {
  return {
    apiVersion: 1,
    groups: [
      {
        orgId: 1,
        name: 'evtwin',
        folder: ALERT_FOLDER_TITLE,
        interval: '1m',
        rules: ALERT_RULES.map(ruleToProvisioning),
      },
    ],
  };
}

export const CONTACT_POINT = 'evtwin-api';

/**
 * One policy tree: everything goes to the API's alert intake (which publishes to evtwin/v1/{site}/alerts
 * and feeds the flows); below the root, per role and then per site, grouping and repeat timing differ:
 * workers get each asset's alert on its own and fast, leads one notification per site.
 */
export function policiesFile(sites: readonly string[]): Record<string, unknown> {
  const perSite = (groupBy: string[]) =>
    sites.map((site) => ({
      receiver: CONTACT_POINT,
      object_matchers: [['site', '=', site]],
      group_by: groupBy,
    }));
  return {
    apiVersion: 1,
    policies: [
      {
        orgId: 1,
        receiver: CONTACT_POINT,
        group_by: ['alertname', 'site'],
        group_wait: '30s',
        group_interval: '5m',
        repeat_interval: '4h',
        routes: [
          {
            receiver: CONTACT_POINT,
            object_matchers: [['role', '=', 'worker']],
            group_by: ['alertname', 'site', 'asset'],
            group_wait: '10s',
            group_interval: '1m',
            repeat_interval: '1h',
            routes: perSite(['alertname', 'site', 'asset']),
          },
          {
            receiver: CONTACT_POINT,
            object_matchers: [['role', '=', 'lead']],
            group_by: ['alertname', 'site'],
            group_wait: '30s',
            group_interval: '5m',
            repeat_interval: '4h',
            routes: perSite(['alertname', 'site']),
          },
        ],
      },
    ],
  };
}
