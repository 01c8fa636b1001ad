/**
 * The provisioned dashboards, written as code so every query is built the same way and checked:
 * `node --import tsx tools/src/grafana/generate.ts` writes provisioning/grafana/dashboards/<folder>/<uid>.json,
 * and tools/test/grafana-provisioning.test.ts fails when the committed JSON differs from this, when an
 * evtwin target is refused by the datasource's own toTwinQuery or the API's parseQuery, or when an
 * InfluxQL query fails against a real influxd.
 */
import type {
  Action,
  AnnotationQuery,
  DashboardLink,
  FieldConfigSource,
  Dashboard as SchemaDashboard,
  VariableModel,
} from '@grafana/schema';
import {
  DASHBOARD_UIDS,
  EVTWIN_DS,
  EVTWIN_PROXY_API,
  FOLDERS,
  INFLUX_DS,
  PANEL_PLUGIN_ID,
  type FolderSpec,
} from './model';

/**
 * A panel target of our datasource: the fields of grafana-datasource/src/types.ts EvtwinQuery (that file
 * imports @grafana/data, which the tools package cannot compile against, so the test checks every target
 * through the datasource's own code instead).
 */
export type EvtwinTarget = {
  refId: string;
  queryType:
    | 'timeseries'
    | 'latest'
    | 'events'
    | 'annotations'
    | 'assets'
    | 'chargers'
    | 'sessions'
    | 'recommendations'
    | 'grievances';
  site?: string;
  line?: string;
  assets?: string[];
  kind?: string;
  metrics?: string[];
  aggregation?: 'mean' | 'min' | 'max' | 'last';
  interval?: string;
  fill?: 'none' | 'null' | 'previous' | 'linear' | 'zero';
  types?: string[];
  severities?: string[];
  status?: 'open' | 'resolved';
  state?: boolean;
  limit?: number;
  live?: boolean;
};

/** A raw InfluxQL target of Grafana's InfluxDB datasource. */
export type InfluxTarget = {
  refId: string;
  query: string;
  rawQuery: true;
  resultFormat: 'time_series' | 'table';
};

type DS = { type: string; uid: string };
type Target = (EvtwinTarget & { datasource: DS }) | (InfluxTarget & { datasource: DS });
type Json = Record<string, unknown>;

export interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: DS;
  targets?: Target[];
  description?: string;
  fieldConfig?: FieldConfigSource;
  options?: Json;
}

export interface Dashboard {
  uid: string;
  title: string;
  description: string;
  tags: string[];
  editable: boolean;
  schemaVersion: number;
  timezone: string;
  refresh: string;
  time: { from: string; to: string };
  templating: { list: VariableModel[] };
  annotations: { list: AnnotationQuery[] };
  links: DashboardLink[];
  panels: Panel[];
}

export interface ProvisionedDashboard {
  folder: FolderSpec;
  /** Ours, and Grafana's dashboard model (@grafana/schema), checked by the compiler. */
  dashboard: Dashboard & SchemaDashboard;
}

// ---- building blocks ----

const ev = (t: EvtwinTarget): Target => ({ datasource: { ...EVTWIN_DS }, ...t });
const influx = (
  refId: string,
  query: string,
  resultFormat: InfluxTarget['resultFormat'] = 'time_series',
): Target => ({
  datasource: { ...INFLUX_DS },
  refId,
  query,
  rawQuery: true,
  resultFormat,
});

/** Grafana's InfluxQL filter for a multi-value variable (formatted as a regex by Grafana). */
const tagIs = (tag: string, variable: string): string => `"${tag}" =~ /^$${variable}$/`;

/** Link from an asset (a row's `site` and `asset` fields) to the Device dashboard, keeping the time range. */
export const deviceLink = {
  title: 'Asset detail',
  url: `/d/${DASHBOARD_UIDS.device}?var-site=\${__data.fields.site}&var-asset=\${__data.fields.asset}&\${__url_time_range}`,
};
type Override = FieldConfigSource['overrides'][number];
const assetLinkOverride = (field = 'asset'): Override => ({
  matcher: { id: 'byName', options: field },
  properties: [{ id: 'links', value: [deviceLink] }],
});

/** The twin API's command route for the charger of a table row (`site` and `asset` fields). */
const ROW_COMMAND_URL = `${EVTWIN_PROXY_API}/chargers/\${__data.fields.site}/\${__data.fields.asset}/commands`;
const ROW_CP = '${__data.fields.site}/${__data.fields.asset}';

/** A visualization action that POSTs one ChargerCommandRequest (core/api.ts) for the row's charger. */
const chargerAction = (title: string, body: Record<string, unknown>, confirmation: string): Action => ({
  type: 'fetch',
  title,
  confirmation,
  oneClick: false,
  fetch: {
    method: 'POST',
    url: ROW_COMMAND_URL,
    body: JSON.stringify(body),
    headers: [['Content-Type', 'application/json']],
  },
});
/** Commands on a charger row (Chargers table). */
export const CHARGER_ACTIONS: readonly Action[] = [
  chargerAction(
    'Maintenance (inoperative)',
    { command: 'availability', operative: false },
    `Take ${ROW_CP} out of service (OCPP ChangeAvailability Inoperative)? Running sessions finish first.`,
  ),
  chargerAction(
    'Back in service (operative)',
    { command: 'availability', operative: true },
    `Put ${ROW_CP} back in service (OCPP ChangeAvailability Operative)?`,
  ),
  chargerAction(
    'Reset (soft)',
    { command: 'reset', hard: false },
    `Soft-reset ${ROW_CP}? Running sessions are stopped first.`,
  ),
  chargerAction(
    'Reset (hard)',
    { command: 'reset', hard: true },
    `Hard-reset (reboot) ${ROW_CP}? Running sessions end abruptly.`,
  ),
];
/** Commands on a session row (Sessions table: its `transaction_id` field). */
export const SESSION_ACTIONS: readonly Action[] = [
  chargerAction(
    'Stop session',
    { command: 'stop', transactionId: '${__data.fields.transaction_id}' },
    'Stop session ${__data.fields.transaction_id} on ' + ROW_CP + ' (OCPP RemoteStopTransaction)?',
  ),
];
const actionsOverride = (field: string, actions: readonly Action[], links = true): Override => ({
  matcher: { id: 'byName', options: field },
  properties: [
    ...(links ? [{ id: 'links', value: [deviceLink] }] : []),
    { id: 'actions', value: [...actions] },
  ],
});

const variable = (
  name: string,
  label: string,
  query: Json,
  opts: { multi?: boolean; includeAll?: boolean } = {},
): VariableModel => ({
  name,
  label,
  type: 'query',
  datasource: { ...EVTWIN_DS },
  query: { refId: `var-${name}`, ...query },
  refresh: 1,
  sort: 1,
  multi: opts.multi ?? false,
  includeAll: opts.includeAll ?? false,
  // '.*' means "all" both to our datasource (client.ts ALL_VALUES) and in InfluxQL regexes.
  ...(opts.includeAll ? { allValue: '.*' } : {}),
});
const siteVar = (opts?: { multi?: boolean; includeAll?: boolean }): VariableModel =>
  variable('site', 'Site', { target: 'site' }, opts);
const lineVar = (): VariableModel =>
  variable('line', 'Line', { target: 'line', site: '$site' }, { includeAll: true, multi: true });
const assetVar = (opts?: { multi?: boolean; includeAll?: boolean }): VariableModel =>
  variable('asset', 'Asset', { target: 'asset', site: '$site', valueAs: 'id' }, opts);
const metricVar = (): VariableModel =>
  variable('metric', 'Metric', { target: 'metric', site: '$site' }, { multi: true, includeAll: false });

/** Lays panels out left to right, wrapping at Grafana's 24 columns, and numbers them. */
class Layout {
  private x = 0;
  private y = 0;
  private rowH = 0;
  private id = 1;
  readonly panels: Panel[] = [];

  add(w: number, h: number, p: Omit<Panel, 'id' | 'gridPos'>): this {
    if (this.x + w > 24) {
      this.x = 0;
      this.y += this.rowH;
      this.rowH = 0;
    }
    const ds = p.targets?.[0]?.datasource;
    this.panels.push({
      id: this.id++,
      gridPos: { x: this.x, y: this.y, w, h },
      ...(ds && p.datasource === undefined ? { datasource: ds } : {}),
      ...p,
    });
    this.x += w;
    this.rowH = Math.max(this.rowH, h);
    return this;
  }
}

const stat = (
  title: string,
  targets: Target[],
  unit = 'none',
  decimals?: number,
): Omit<Panel, 'id' | 'gridPos'> => ({
  type: 'stat',
  title,
  targets,
  fieldConfig: { defaults: { unit, ...(decimals !== undefined ? { decimals } : {}) }, overrides: [] },
  options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'value' },
});
const timeseries = (title: string, targets: Target[], unit = 'none'): Omit<Panel, 'id' | 'gridPos'> => ({
  type: 'timeseries',
  title,
  targets,
  fieldConfig: { defaults: { unit, links: [] }, overrides: [] },
  options: { legend: { displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'multi' } },
});
const table = (
  title: string,
  targets: Target[],
  overrides: Override[] = [assetLinkOverride()],
): Omit<Panel, 'id' | 'gridPos'> => ({
  type: 'table',
  title,
  targets,
  fieldConfig: { defaults: {}, overrides },
  options: { showHeader: true, cellHeight: 'sm' },
});
const twin = (title: string, mode: '3d' | 'map', targets: Target[]): Omit<Panel, 'id' | 'gridPos'> => ({
  type: PANEL_PLUGIN_ID,
  title,
  targets,
  // A click on an asset follows the data link to its Device dashboard.
  fieldConfig: { defaults: { links: [deviceLink] }, overrides: [] },
  options: { mode, clickAction: 'link', showLabels: true, showLegend: true },
});
const text = (title: string, content: string): Omit<Panel, 'id' | 'gridPos'> => ({
  type: 'text',
  title,
  options: { mode: 'markdown', content },
});

function dashboard(
  uid: string,
  title: string,
  description: string,
  templating: VariableModel[],
  layout: Layout,
  extra: Partial<Dashboard> = {},
): Dashboard & SchemaDashboard {
  const annotationTarget: EvtwinTarget = { refId: 'Anno', queryType: 'annotations', site: '$site' };
  return {
    uid,
    title,
    description,
    tags: ['evtwin'],
    editable: false,
    schemaVersion: 39,
    timezone: 'browser',
    refresh: '10s',
    time: { from: 'now-6h', to: 'now' },
    templating: { list: templating },
    annotations: {
      list: [
        {
          name: 'Anomalies and alerts',
          enable: true,
          iconColor: 'red',
          datasource: { ...EVTWIN_DS },
          target: annotationTarget,
        },
      ],
    },
    // Every EVTwin dashboard links to the others (by the shared tag).
    links: [
      {
        title: 'EVTwin',
        type: 'dashboards',
        tags: ['evtwin'],
        asDropdown: true,
        keepTime: true,
        includeVars: false,
        icon: 'external link',
        targetBlank: false,
        tooltip: '',
        url: '',
      },
    ],
    panels: layout.panels,
    ...extra,
  };
}

// ---- the dashboards ----

const ASSETS_STATE = (refId = 'A', extra: Partial<EvtwinTarget> = {}): Target =>
  ev({ refId, queryType: 'assets', state: true, ...extra });

function head(): Dashboard & SchemaDashboard {
  const s = tagIs('site', 'site');
  const l = new Layout()
    .add(
      4,
      4,
      stat('Assets reporting (5 min)', [
        influx(
          'A',
          `SELECT count("last") FROM (SELECT last("seq") FROM "telemetry" WHERE time > now() - 5m AND ${s} GROUP BY "asset")`,
        ),
      ]),
    )
    .add(
      4,
      4,
      stat(
        'Mean health',
        [influx('A', `SELECT mean("health") FROM "scores" WHERE $timeFilter AND ${s}`)],
        'none',
        0,
      ),
    )
    .add(
      4,
      4,
      stat(
        'Highest failure risk',
        [influx('A', `SELECT max("failure_risk") FROM "scores" WHERE $timeFilter AND ${s}`)],
        'percentunit',
      ),
    )
    .add(
      4,
      4,
      stat('Anomalies', [influx('A', `SELECT count("message") FROM "events" WHERE $timeFilter AND ${s}`)]),
    )
    .add(
      4,
      4,
      stat(
        'Energy used',
        [
          influx(
            'A',
            `SELECT sum("integral") FROM (SELECT integral("power", 1h) FROM "telemetry" WHERE $timeFilter AND ${s} GROUP BY "asset")`,
          ),
        ],
        'kwatth',
        1,
      ),
    )
    .add(
      4,
      4,
      stat(
        'Savings recommended',
        [influx('A', `SELECT sum("kwh") FROM "recommendations" WHERE $timeFilter AND ${s}`)],
        'kwatth',
        1,
      ),
    )
    .add(
      12,
      9,
      timeseries(
        'Power by site',
        [
          influx(
            'A',
            `SELECT mean("power") FROM "telemetry" WHERE $timeFilter AND ${s} GROUP BY time($__interval), "site" fill(null)`,
          ),
        ],
        'kwatt',
      ),
    )
    .add(
      12,
      9,
      timeseries('Health by site', [
        influx(
          'A',
          `SELECT mean("health") FROM "scores" WHERE $timeFilter AND ${s} GROUP BY time($__interval), "site" fill(null)`,
        ),
      ]),
    )
    .add(
      12,
      10,
      table('Failure risk ranking (click an asset for its detail)', [
        influx(
          'A',
          `SELECT last("failure_risk") AS "failure_risk", last("health") AS "health" FROM "scores" WHERE $timeFilter AND ${s} GROUP BY "site", "asset"`,
          'table',
        ),
      ]),
    )
    .add(
      12,
      10,
      table('Energy recommendations', [
        ev({ refId: 'A', queryType: 'recommendations', site: '$site', limit: 50 }),
      ]),
    )
    .add(12, 12, twin('Plant floor (3D)', '3d', [ASSETS_STATE('A', { site: 'plant-a' })]))
    .add(12, 12, twin('All sites (map)', 'map', [ASSETS_STATE('A', { site: '$site' })]));
  return dashboard(
    DASHBOARD_UIDS.head,
    'EVTwin · Head: all sites',
    'KPIs, energy, risk ranking, recommendations, the plant floor in 3D and every site on the map.',
    [siteVar({ multi: true, includeAll: true })],
    l,
  );
}

function lead(): Dashboard & SchemaDashboard {
  const f = `${tagIs('site', 'site')} AND ${tagIs('line', 'line')}`;
  const l = new Layout()
    .add(
      24,
      8,
      timeseries(
        'Power per asset',
        [
          ev({
            refId: 'A',
            queryType: 'timeseries',
            site: '$site',
            line: '$line',
            metrics: ['power'],
            aggregation: 'mean',
          }),
        ],
        'kwatt',
      ),
    )
    .add(
      12,
      8,
      timeseries(
        'Temperature per asset',
        [
          ev({
            refId: 'A',
            queryType: 'timeseries',
            site: '$site',
            line: '$line',
            metrics: ['temperature'],
            aggregation: 'max',
          }),
        ],
        'celsius',
      ),
    )
    .add(
      12,
      8,
      timeseries('Anomaly score per asset', [
        influx(
          'A',
          `SELECT max("score") FROM "scores" WHERE $timeFilter AND ${f} GROUP BY time($__interval), "asset" fill(null)`,
        ),
      ]),
    )
    .add(
      12,
      9,
      table('Anomalies and alerts', [
        ev({ refId: 'A', queryType: 'events', site: '$site', line: '$line', limit: 200 }),
      ]),
    )
    .add(
      12,
      9,
      timeseries('Anomalies per asset', [
        influx(
          'A',
          `SELECT count("message") FROM "events" WHERE $timeFilter AND ${f} GROUP BY time(10m), "asset" fill(0)`,
        ),
      ]),
    )
    .add(
      12,
      9,
      table(
        'Open grievances',
        [ev({ refId: 'A', queryType: 'grievances', site: '$site', status: 'open' })],
        [],
      ),
    )
    .add(
      12,
      9,
      table(
        'Chargers: click a charge point for its commands',
        [ev({ refId: 'A', queryType: 'chargers', site: '$site' })],
        // The asset cell offers its detail link and the commands (leads and heads only, audited).
        [actionsOverride('asset', CHARGER_ACTIONS)],
      ),
    )
    .add(
      24,
      8,
      table(
        'Charging sessions: click a transaction to stop it',
        [ev({ refId: 'A', queryType: 'sessions', site: '$site', limit: 100 })],
        [assetLinkOverride(), actionsOverride('transaction_id', SESSION_ACTIONS, false)],
      ),
    );
  return dashboard(
    DASHBOARD_UIDS.lead,
    'EVTwin · Lead: line detail',
    'One site or line: power and temperature per asset, anomaly scores, anomalies and alerts, grievances, chargers.',
    [siteVar(), lineVar()],
    l,
  );
}

function worker(): Dashboard & SchemaDashboard {
  const l = new Layout()
    .add(
      24,
      7,
      table('My machines now (click for detail)', [
        ev({ refId: 'A', queryType: 'latest', site: '$site', assets: ['$asset'] }),
      ]),
    )
    .add(
      12,
      9,
      timeseries('State (live: 0 off, 1 idle, 2 running, 3 fault)', [
        ev({
          refId: 'A',
          queryType: 'timeseries',
          site: '$site',
          assets: ['$asset'],
          metrics: ['state'],
          aggregation: 'last',
          live: true,
        }),
      ]),
    )
    .add(
      12,
      9,
      timeseries(
        'Temperature (live)',
        [
          ev({
            refId: 'A',
            queryType: 'timeseries',
            site: '$site',
            assets: ['$asset'],
            metrics: ['temperature'],
            aggregation: 'max',
            live: true,
          }),
        ],
        'celsius',
      ),
    )
    .add(
      24,
      9,
      table('My alerts', [
        ev({
          refId: 'A',
          queryType: 'events',
          site: '$site',
          assets: ['$asset'],
          severities: ['warning', 'critical'],
          limit: 100,
        }),
      ]),
    );
  return dashboard(
    DASHBOARD_UIDS.worker,
    'EVTwin · Worker: my machines',
    'The machines in your scope (the API shows only those): live state, temperature and alerts.',
    [siteVar(), assetVar({ multi: true, includeAll: true })],
    l,
    { refresh: '5s', time: { from: 'now-1h', to: 'now' } },
  );
}

function water(): Dashboard & SchemaDashboard {
  const s = tagIs('site', 'site');
  const l = new Layout()
    .add(14, 14, twin('Water network', 'map', [ASSETS_STATE('A', { site: '$site' })]))
    .add(
      10,
      14,
      table('Network grievances', [ev({ refId: 'A', queryType: 'grievances', site: '$site' })], []),
    )
    .add(
      6,
      8,
      stat(
        'Inlet flow',
        [influx('A', `SELECT last("flow") FROM "telemetry" WHERE $timeFilter AND ${s}`)],
        'lps',
        1,
      ),
    )
    .add(
      9,
      8,
      timeseries(
        'Pressure',
        [
          influx(
            'A',
            `SELECT mean("pressure") FROM "telemetry" WHERE $timeFilter AND ${s} GROUP BY time($__interval), "asset" fill(null)`,
          ),
        ],
        'pressurebar',
      ),
    )
    .add(
      9,
      8,
      timeseries('Tank level, chlorine, turbidity', [
        ev({
          refId: 'A',
          queryType: 'timeseries',
          site: '$site',
          metrics: ['level', 'chlorine', 'turbidity'],
        }),
      ]),
    );
  return dashboard(
    DASHBOARD_UIDS.water,
    'EVTwin · Water network',
    'The water network on a map coloured by health, flows, pressures, quality and grievances.',
    [variable('site', 'Site', { target: 'site' }, {})],
    l,
  );
}

function charging(): Dashboard & SchemaDashboard {
  const s = tagIs('site', 'site');
  const l = new Layout()
    .add(
      6,
      5,
      stat('Charge points reporting', [
        influx(
          'A',
          `SELECT count("last") FROM (SELECT last("online") FROM "charger" WHERE $timeFilter AND ${s} GROUP BY "cp")`,
        ),
      ]),
    )
    .add(
      6,
      5,
      stat('Charging now', [
        influx(
          'A',
          `SELECT count("last") FROM (SELECT last("power_w") FROM "charger" WHERE time > now() - 5m AND "status" = 'charging' AND ${s} GROUP BY "cp")`,
        ),
      ]),
    )
    .add(
      6,
      5,
      stat('Faulted', [
        influx(
          'A',
          `SELECT count("last") FROM (SELECT last("online") FROM "charger" WHERE time > now() - 15m AND "status" = 'faulted' AND ${s} GROUP BY "cp")`,
        ),
      ]),
    )
    .add(
      6,
      5,
      stat(
        'Energy delivered',
        [
          influx(
            'A',
            `SELECT sum("energy_wh") / 1000 FROM "sessions" WHERE $timeFilter AND "state" = 'ended' AND ${s}`,
          ),
        ],
        'kwatth',
        1,
      ),
    )
    .add(
      12,
      12,
      twin('Charge points (public status)', 'map', [
        ev({ refId: 'A', queryType: 'chargers', site: '$site' }),
      ]),
    )
    .add(
      12,
      12,
      table(
        'Charge points',
        [ev({ refId: 'A', queryType: 'chargers', site: '$site' })],
        [assetLinkOverride()],
      ),
    )
    .add(12, 9, table('Sessions', [ev({ refId: 'A', queryType: 'sessions', site: '$site', limit: 200 })], []))
    .add(
      12,
      9,
      timeseries(
        'Charging power',
        [
          influx(
            'A',
            `SELECT mean("power_w") / 1000 FROM "charger" WHERE $timeFilter AND ${s} GROUP BY time($__interval), "cp" fill(null)`,
          ),
        ],
        'kwatt',
      ),
    );
  return dashboard(
    DASHBOARD_UIDS.charging,
    'EVTwin · Charging network',
    'Charge points on a map with their public status, sessions and energy delivered.',
    [variable('site', 'Site', { target: 'site' }, {})],
    l,
  );
}

function device(): Dashboard & SchemaDashboard {
  const f = `${tagIs('site', 'site')} AND ${tagIs('asset', 'asset')}`;
  const l = new Layout()
    .add(
      24,
      5,
      table('Now', [ev({ refId: 'A', queryType: 'latest', site: '$site', assets: ['$asset'] })], []),
    )
    .add(
      24,
      10,
      timeseries('Metrics (live)', [
        ev({
          refId: 'A',
          queryType: 'timeseries',
          site: '$site',
          assets: ['$asset'],
          metrics: ['$metric'],
          live: true,
        }),
      ]),
    )
    .add(
      12,
      8,
      timeseries('Health and failure risk', [
        influx(
          'A',
          `SELECT mean("health") AS "health" FROM "scores" WHERE $timeFilter AND ${f} GROUP BY time($__interval) fill(null)`,
        ),
        influx(
          'B',
          `SELECT mean("failure_risk") * 100 AS "failure risk %" FROM "scores" WHERE $timeFilter AND ${f} GROUP BY time($__interval) fill(null)`,
        ),
      ]),
    )
    .add(
      12,
      8,
      timeseries('Anomaly score', [
        influx(
          'A',
          `SELECT max("score") AS "score" FROM "scores" WHERE $timeFilter AND ${f} GROUP BY time($__interval) fill(null)`,
        ),
      ]),
    )
    .add(
      16,
      9,
      table(
        'Events',
        [ev({ refId: 'A', queryType: 'events', site: '$site', assets: ['$asset'], limit: 200 })],
        [],
      ),
    )
    .add(
      8,
      9,
      text(
        'Export',
        [
          'Raw data of **$asset** in the selected range as CSV (the API applies your scope):',
          '',
          '[Download CSV](/api/datasources/proxy/uid/evtwin/api/export.csv?site=${site}&asset=${asset}&from=${__from}&to=${__to})',
        ].join('\n'),
      ),
    );
  return dashboard(
    DASHBOARD_UIDS.device,
    'EVTwin · Device',
    'One asset: its latest values, every metric over time (live), health, failure risk, anomaly score, events and a CSV export.',
    [siteVar(), assetVar(), metricVar()],
    l,
    { time: { from: 'now-3h', to: 'now' } },
  );
}

const folder = (uid: string): FolderSpec => {
  const f = FOLDERS.find((x) => x.uid === uid);
  if (!f) throw new Error(`no folder ${uid}`);
  return f;
};

/** Every provisioned dashboard with its folder. */
export function dashboards(): ProvisionedDashboard[] {
  return [
    { folder: folder('evtwin-head'), dashboard: head() },
    { folder: folder('evtwin-lead'), dashboard: lead() },
    { folder: folder('evtwin-worker'), dashboard: worker() },
    { folder: folder('evtwin-networks'), dashboard: water() },
    { folder: folder('evtwin-networks'), dashboard: charging() },
    { folder: folder('evtwin-device'), dashboard: device() },
  ];
}
