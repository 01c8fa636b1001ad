/** MQTT message → canonical readings and rejections. Pure: the ingest node only wires this in. */
import type { AssetIndex } from './assetModel';
import type { Reading } from './reading';
import { decodeTelemetry, type DecodeLimits, type Rejection } from './telemetry';
import type { TopicTemplate } from './topics';

export interface IngestConfig {
  template: TopicTemplate;
  /** Site for templates without {site}. */
  defaultSite?: string;
  /** Kind for assets the model does not describe and topics without {kind}. */
  defaultKind: string;
  limits: DecodeLimits;
  /** When given, readings of assets not in the model are refused. */
  assets?: AssetIndex;
}

export interface IngestResult {
  readings: Reading[];
  rejections: Rejection[];
}

export function ingestMessage(
  topic: string,
  payload: unknown,
  receivedAt: number,
  config: IngestConfig,
): IngestResult {
  const fields = config.template.match(topic);
  if (!fields) {
    return reject({
      code: 'topic-mismatch',
      reason: `topic "${topic}" does not fit the template "${config.template.template}"`,
    });
  }
  const assetId = fields.asset as string;
  let site = fields.site ?? config.defaultSite;
  let line = fields.line;
  let kind = fields.kind ?? config.defaultKind;
  if (config.assets) {
    const asset = site ? config.assets.get(site, assetId) : config.assets.byId(assetId);
    if (!asset) {
      return reject({
        code: 'unknown-asset',
        reason: site
          ? `asset "${assetId}" is not in site "${site}" of the asset model`
          : `asset "${assetId}" is not in the asset model`,
      });
    }
    site = asset.site;
    line = asset.line ?? line;
    kind = asset.kind;
  }
  if (!site)
    return reject({
      code: 'topic-mismatch',
      reason: `topic "${topic}" names no site and no default site is set`,
    });

  const decoded = decodeTelemetry(payload, receivedAt, config.limits);
  const readings = decoded.items.map((item): Reading => {
    const r: Reading = { site: site as string, asset: assetId, kind, ts: item.ts, metrics: item.metrics };
    if (line !== undefined) r.line = line;
    if (item.seq !== undefined) r.seq = item.seq;
    return r;
  });
  return { readings, rejections: decoded.rejections };
}

function reject(r: Rejection): IngestResult {
  return { readings: [], rejections: [r] };
}
