/**
 * API answers → Grafana data frames: proper field types, units from the asset catalogue, and a data link
 * from every asset field to the asset detail dashboard. Pure (no Grafana runtime), so the built plugin's
 * query path can run outside Grafana.
 */
import {
  createDataFrame,
  FieldType,
  type DataFrame,
  type DataLink,
  type FieldDTO,
  type QueryResultMeta,
} from '@grafana/data';
import type { QueryResult, TwinAsset } from './contract';

/** The asset detail dashboard (provisioning/grafana): its uid and variables. */
export const DEVICE_DASHBOARD_UID = 'evtwin-device';

/** Catalogue units → Grafana unit ids; anything else is shown as a suffix. */
const GRAFANA_UNITS: Record<string, string> = {
  kW: 'kwatt',
  W: 'watt',
  kWh: 'kwatth',
  V: 'volt',
  A: 'amp',
  '°C': 'celsius',
  bar: 'pressurebar',
  rpm: 'rotrpm',
  s: 's',
  ms: 'ms',
  m: 'lengthm',
  '%': 'percent',
};

export function grafanaUnit(unit: string | undefined): string | undefined {
  if (unit === undefined || unit === '') return undefined;
  return GRAFANA_UNITS[unit] ?? `suffix:${unit}`;
}

/** A link for a field whose row carries `site` and `asset` fields (tables). */
export const assetFieldLink: DataLink = {
  title: 'Asset detail',
  url: `/d/${DEVICE_DASHBOARD_UID}?var-site=\${__data.fields.site}&var-asset=\${__data.fields.asset}&\${__url_time_range}`,
};

/** A link for one asset's series (time series, where site and asset are the frame's, not a row's). */
export function assetLink(site: string, asset: string): DataLink {
  return {
    title: `Asset detail: ${site}/${asset}`,
    url: `/d/${DEVICE_DASHBOARD_UID}?var-site=${encodeURIComponent(site)}&var-asset=${encodeURIComponent(asset)}&\${__url_time_range}`,
  };
}

/** Metric name → unit, from the catalogue (GET /assets) when the datasource has it. */
export type UnitCatalogue = Record<string, string>;

export function unitsOf(assets: TwinAsset[]): UnitCatalogue {
  const out: UnitCatalogue = {};
  for (const a of assets) for (const [m, u] of Object.entries(a.metrics)) out[m] ??= u;
  return out;
}

type Cell = string | number | boolean | null | undefined;

const str = (name: string, values: Cell[], extra: Partial<FieldDTO> = {}): FieldDTO => ({
  name,
  type: FieldType.string,
  values: values.map((v) => (v === undefined ? null : v)),
  ...extra,
});
const num = (name: string, values: Cell[], unit?: string): FieldDTO => ({
  name,
  type: FieldType.number,
  values: values.map((v) => (typeof v === 'number' ? v : null)),
  config: unit ? { unit } : {},
});
const time = (name: string, values: (number | null | undefined)[]): FieldDTO => ({
  name,
  type: FieldType.time,
  values: values.map((v) => v ?? null),
});
const assetField = (values: Cell[]): FieldDTO =>
  str('asset', values, { config: { links: [assetFieldLink] } });

/** Fields for a record of mixed values (charger status, session fields): the type from the first value. */
function mixedFields(rows: Record<string, Cell>[], prefix = ''): FieldDTO[] {
  const names = [...new Set(rows.flatMap((r) => Object.keys(r)))].sort();
  return names.map((n) => {
    const values = rows.map((r) => r[n] ?? null);
    const first = values.find((v) => v !== null);
    const name = prefix + n;
    if (typeof first === 'number') return num(name, values);
    if (typeof first === 'boolean') return { name, type: FieldType.boolean, values };
    return str(
      name,
      values.map((v) => (v === null ? null : String(v))),
    );
  });
}

function frame(refId: string, name: string, fields: FieldDTO[], meta?: QueryResultMeta): DataFrame {
  return createDataFrame({ refId, name, fields, ...(meta ? { meta } : {}) });
}

/** One API result → frames. `units` fills units the answer does not carry (latest values). */
export function toFrames(result: QueryResult, units: UnitCatalogue = {}): DataFrame[] {
  if ('error' in result) return [];
  const { refId } = result;
  switch (result.queryType) {
    case 'timeseries':
      return result.series.map((s) => {
        const unit = grafanaUnit(s.unit ?? units[s.metric]);
        const labels: Record<string, string> = { site: s.site, asset: s.asset };
        if (s.line) labels.line = s.line;
        if (s.kind) labels.kind = s.kind;
        return frame(
          refId,
          `${s.site}/${s.asset} ${s.metric}`,
          [
            time(
              'time',
              s.points.map((p) => p[0]),
            ),
            {
              name: s.metric,
              type: FieldType.number,
              values: s.points.map((p) => p[1]),
              labels,
              config: {
                ...(unit ? { unit } : {}),
                displayNameFromDS: `${s.asset} ${s.metric}`,
                links: [assetLink(s.site, s.asset)],
                interval: result.intervalMs,
              },
            },
          ],
          {
            executedQueryString: `${result.aggregation} of ${s.metric} per ${result.intervalMs / 1000} s from ${result.rollup}`,
            custom: { rollup: result.rollup, intervalMs: result.intervalMs },
          },
        );
      });
    case 'latest': {
      const rows = result.rows;
      const metrics = [...new Set(rows.flatMap((r) => Object.keys(r.values)))].sort();
      return [
        frame(refId, 'latest', [
          time(
            'time',
            rows.map((r) => r.ts),
          ),
          str(
            'site',
            rows.map((r) => r.site),
          ),
          str(
            'line',
            rows.map((r) => r.line),
          ),
          assetField(rows.map((r) => r.asset)),
          str(
            'kind',
            rows.map((r) => r.kind),
          ),
          num(
            'health',
            rows.map((r) => r.health),
            // health is an index 0..100; failure risk a probability 0..1
            'percent',
          ),
          num(
            'failureRisk',
            rows.map((r) => r.failureRisk),
            'percentunit',
          ),
          ...metrics.map((m) =>
            num(
              m,
              rows.map((r) => r.values[m]),
              grafanaUnit(units[m]),
            ),
          ),
        ]),
      ];
    }
    case 'events': {
      const ev = result.events;
      const fields: FieldDTO[] = [
        time(
          'time',
          ev.map((e) => e.ts),
        ),
        str(
          'site',
          ev.map((e) => e.site),
        ),
        str(
          'line',
          ev.map((e) => e.line),
        ),
        assetField(ev.map((e) => e.asset)),
        str(
          'type',
          ev.map((e) => e.type),
        ),
        str(
          'severity',
          ev.map((e) => e.severity),
        ),
        str(
          'message',
          ev.map((e) => e.message),
        ),
        str(
          'metric',
          ev.map((e) => e.metric),
        ),
        num(
          'observed',
          ev.map((e) => e.observed),
        ),
        num(
          'expected',
          ev.map((e) => e.expected),
        ),
        str(
          'source',
          ev.map((e) => e.source),
        ),
      ];
      if (ev.some((e) => e.source === 'audit'))
        fields.push(
          str(
            'actor',
            ev.map((e) => e.actor),
          ),
          str(
            'outcome',
            ev.map((e) => e.outcome),
          ),
          str(
            'target',
            ev.map((e) => e.target),
          ),
        );
      return [frame(refId, 'events', fields)];
    }
    case 'annotations': {
      const an = result.annotations;
      // Grafana reads annotations from fields named time, timeEnd, title, text and tags.
      return [
        frame(refId, 'annotations', [
          time(
            'time',
            an.map((a) => a.time),
          ),
          time(
            'timeEnd',
            an.map((a) => a.timeEnd ?? a.time),
          ),
          str(
            'title',
            an.map((a) => a.title),
          ),
          str(
            'text',
            an.map((a) => a.text),
          ),
          { name: 'tags', type: FieldType.other, values: an.map((a) => a.tags) },
          str(
            'site',
            an.map((a) => a.site),
          ),
          assetField(an.map((a) => a.asset)),
        ]),
      ];
    }
    case 'assets':
      return [assetsFrame(refId, result.assets)];
    case 'chargers': {
      const ch = result.chargers;
      return [
        frame(refId, 'chargers', [
          time(
            'lastSeen',
            ch.map((c) => c.lastSeen),
          ),
          str(
            'site',
            ch.map((c) => c.site),
          ),
          assetField(ch.map((c) => c.asset)),
          str(
            'name',
            ch.map((c) => c.name),
          ),
          num(
            'lat',
            ch.map((c) => c.location?.lat),
          ),
          num(
            'lon',
            ch.map((c) => c.location?.lon),
          ),
          ...[...new Set(ch.flatMap((c) => Object.keys(c.values)))].sort().map((m) =>
            num(
              m,
              ch.map((c) => c.values[m]),
              grafanaUnit(units[m]),
            ),
          ),
          ...mixedFields(
            ch.map((c) => c.status),
            'status.',
          ),
        ]),
      ];
    }
    case 'sessions': {
      const ss = result.sessions;
      return [
        frame(refId, 'sessions', [
          time(
            'time',
            ss.map((s) => s.ts),
          ),
          str(
            'site',
            ss.map((s) => s.site),
          ),
          assetField(ss.map((s) => s.asset)),
          ...mixedFields(ss.map((s) => s.tags)),
          ...mixedFields(ss.map((s) => s.fields)),
        ]),
      ];
    }
    case 'recommendations': {
      const rs = result.recommendations;
      return [
        frame(refId, 'recommendations', [
          time(
            'time',
            rs.map((r) => r.ts),
          ),
          str(
            'site',
            rs.map((r) => r.site),
          ),
          assetField(rs.map((r) => r.asset)),
          str(
            'type',
            rs.map((r) => r.type),
          ),
          str(
            'message',
            rs.map((r) => r.message),
          ),
          num(
            'kwh',
            rs.map((r) => r.kwh),
            'kwatth',
          ),
          num(
            'cost',
            rs.map((r) => r.cost),
          ),
          str(
            'currency',
            rs.map((r) => r.currency),
          ),
          time(
            'windowStart',
            rs.map((r) => r.windowStart),
          ),
        ]),
      ];
    }
    case 'grievances': {
      const gs = result.grievances;
      return [
        frame(refId, 'grievances', [
          time(
            'time',
            gs.map((g) => g.createdAt),
          ),
          str(
            'id',
            gs.map((g) => g.id),
          ),
          str(
            'status',
            gs.map((g) => g.status),
          ),
          str(
            'site',
            gs.map((g) => g.site),
          ),
          str(
            'line',
            gs.map((g) => g.line),
          ),
          assetField(gs.map((g) => g.asset)),
          str(
            'reporter',
            gs.map((g) => g.reporter),
          ),
          str(
            'text',
            gs.map((g) => g.text),
          ),
          num(
            'lat',
            gs.map((g) => g.location.lat),
          ),
          num(
            'lon',
            gs.map((g) => g.location.lon),
          ),
          time(
            'resolvedAt',
            gs.map((g) => g.resolvedAt),
          ),
          str(
            'resolvedBy',
            gs.map((g) => g.resolvedBy),
          ),
          str(
            'resolution',
            gs.map((g) => g.resolution),
          ),
        ]),
      ];
    }
  }
}

export function assetsFrame(refId: string, assets: TwinAsset[]): DataFrame {
  return frame(refId, 'assets', [
    str(
      'ref',
      assets.map((a) => a.ref),
    ),
    str(
      'site',
      assets.map((a) => a.site),
    ),
    str(
      'line',
      assets.map((a) => a.line),
    ),
    assetField(assets.map((a) => a.id)),
    str(
      'name',
      assets.map((a) => a.name),
    ),
    str(
      'kind',
      assets.map((a) => a.kind),
    ),
    num(
      'lat',
      assets.map((a) => a.location?.lat),
    ),
    num(
      'lon',
      assets.map((a) => a.location?.lon),
    ),
    // Floor position from the asset model (metres): where the 3D panel places the asset.
    num(
      'x',
      assets.map((a) => a.position?.x),
      'lengthm',
    ),
    num(
      'y',
      assets.map((a) => a.position?.y),
      'lengthm',
    ),
    num(
      'z',
      assets.map((a) => a.position?.z),
      'lengthm',
    ),
    str(
      'metrics',
      assets.map((a) => Object.keys(a.metrics).join(', ')),
    ),
    time(
      'lastSeen',
      assets.map((a) => a.state?.lastSeen),
    ),
    num(
      'health',
      assets.map((a) => a.state?.health),
      'percent',
    ),
    num(
      'failureRisk',
      assets.map((a) => a.state?.failureRisk),
      'percentunit',
    ),
    num(
      'state',
      assets.map((a) => a.state?.state),
    ),
  ]);
}
