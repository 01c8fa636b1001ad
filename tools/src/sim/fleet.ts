/** Which devices to simulate: the assets of an asset model, or a synthetic fleet for load tests. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ASSET_KINDS, parseAssetModel, type Asset, type AssetKind } from 'node-red-contrib-evtwin';
import { Rng } from './prng';

/** provisioning/evtwin/assets.yaml of this checkout (same depth from src/sim and dist/sim). */
export const DEFAULT_ASSETS_FILE = resolve(__dirname, '../../../provisioning/evtwin/assets.yaml');

export function loadAssets(file: string = DEFAULT_ASSETS_FILE): Asset[] {
  return parseAssetModel(readFileSync(file, 'utf8'), file).assets;
}

export const SYNTHETIC_SITE = 'sim';

/** Rough centres for synthetic locations: a water network and a charging hub. */
const GEO_CENTRE: Partial<Record<AssetKind, { lat: number; lon: number }>> = {
  flow: { lat: 18.52, lon: 73.856 },
  pressure: { lat: 18.52, lon: 73.856 },
  level: { lat: 18.52, lon: 73.856 },
  chlorine: { lat: 18.52, lon: 73.856 },
  turbidity: { lat: 18.52, lon: 73.856 },
  charger: { lat: 52.52, lon: 13.405 },
};

/**
 * `count` devices spread round-robin over `kinds`, ids `cnc-0001`, `flow-0002`... under site `sim`.
 * Water sensors and chargers get seeded locations around a centre; machines a grid position.
 */
export function syntheticAssets(count: number, kinds: readonly AssetKind[] = ASSET_KINDS, seed = 1): Asset[] {
  if (kinds.length === 0) throw new RangeError('no kinds to generate');
  const rng = new Rng(seed, 'fleet');
  const width = Math.max(4, String(Math.ceil(count / kinds.length)).length);
  const perKind = new Map<AssetKind, number>();
  const out: Asset[] = [];
  for (let i = 0; i < count; i++) {
    const kind = kinds[i % kinds.length] as AssetKind;
    const n = (perKind.get(kind) ?? 0) + 1;
    perKind.set(kind, n);
    const id = `${kind}-${String(n).padStart(width, '0')}`;
    const asset: Asset = { id, site: SYNTHETIC_SITE, kind, name: `Simulated ${kind} ${n}`, bounds: {} };
    const centre = GEO_CENTRE[kind];
    if (centre) {
      asset.location = {
        lat: Math.round((centre.lat + rng.uniform(-0.03, 0.03)) * 1e5) / 1e5,
        lon: Math.round((centre.lon + rng.uniform(-0.03, 0.03)) * 1e5) / 1e5,
      };
    } else {
      asset.position = {
        x: ((n - 1) % 20) * 4,
        y: Math.floor((n - 1) / 20) * 6 + (kind === 'robot' ? 3 : 0),
        z: 0,
      };
    }
    out.push(asset);
  }
  return out;
}

/**
 * The assets as an asset-model document, so a stack can load a synthetic fleet. JSON is YAML 1.2, so
 * parseAssetModel reads it as it is, without a YAML writer here.
 */
export function assetsToModelText(assets: readonly Asset[]): string {
  type Entry = Record<string, unknown>;
  const sites = new Map<string, { id: string; lines: Map<string, Entry[]>; assets: Entry[] }>();
  for (const a of assets) {
    const site = sites.get(a.site) ?? { id: a.site, lines: new Map<string, Entry[]>(), assets: [] };
    sites.set(a.site, site);
    const entry: Entry = { id: a.id, kind: a.kind, name: a.name };
    if (a.location) entry.location = a.location;
    if (a.position) entry.position = a.position;
    if (Object.keys(a.bounds).length > 0) entry.bounds = a.bounds;
    if (a.line) site.lines.set(a.line, [...(site.lines.get(a.line) ?? []), entry]);
    else site.assets.push(entry);
  }
  const doc = {
    sites: [...sites.values()].map((s) => ({
      id: s.id,
      ...(s.lines.size > 0 ? { lines: [...s.lines].map(([id, as]) => ({ id, assets: as })) } : {}),
      ...(s.assets.length > 0 ? { assets: s.assets } : {}),
    })),
  };
  return JSON.stringify(doc, null, 2) + '\n';
}
