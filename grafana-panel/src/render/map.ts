/**
 * The map (Leaflet): tiles from a URL template, assets clustered with supercluster so that only what is
 * visible at the current zoom is in the DOM (lightweight divIcons, reused between moves), markers coloured
 * by status, clusters by their worst member, popups with current values, click to select an asset.
 */
import L from 'leaflet';
import Supercluster from 'supercluster';
import type { AssetView } from '../model/assets';
import { detailRows } from '../model/format';
import type { Level } from '../model/status';
import { escapeHtml } from './floor';

export interface MapStyle {
  color: (name: string) => string;
  /** Class names (emotion) for markers, clusters and the anomaly pulse. */
  marker: string;
  cluster: string;
  pulse: string;
  popup: string;
}

export interface MapOptions {
  tileUrl: string;
  attribution: string;
  maxZoom: number;
  clusterRadius: number;
}

export interface MapCallbacks {
  onClick: (asset: AssetView) => void;
}

interface PointProps {
  i: number;
  rank: number;
  color: string;
  anomalies: number;
}
type ClusterProps = PointProps & { cluster?: boolean; cluster_id?: number; point_count?: number };

const RANK: Record<Level, number> = { ok: 0, unknown: 1, offline: 2, warn: 3, alarm: 4 };

export class TwinMap {
  readonly map: L.Map;
  private tiles: L.TileLayer;
  private readonly layer = L.layerGroup();
  private index?: Supercluster<PointProps, PointProps>;
  private assets: AssetView[] = [];
  private located: AssetView[] = [];
  private markers = new Map<string, L.Marker>();
  private layoutKey = '';
  private disposed = false;
  /** Milliseconds the last marker refresh took (read by the benchmark). */
  readonly stats = { lastRefreshMs: 0, visibleMarkers: 0 };

  constructor(
    private readonly container: HTMLElement,
    private style: MapStyle,
    private readonly callbacks: MapCallbacks,
    private options: MapOptions,
  ) {
    this.map = L.map(container, {
      zoomControl: true,
      attributionControl: true,
      worldCopyJump: true,
      zoomSnap: 0.5,
    });
    this.map.attributionControl.setPrefix(false);
    this.tiles = this.tileLayer();
    this.tiles.addTo(this.map);
    this.layer.addTo(this.map);
    this.map.setView([20, 0], 2);
    this.map.on('moveend', this.refresh);
  }

  setOptions(o: MapOptions): void {
    const tilesChanged =
      o.tileUrl !== this.options.tileUrl ||
      o.attribution !== this.options.attribution ||
      o.maxZoom !== this.options.maxZoom;
    const clusterChanged =
      o.clusterRadius !== this.options.clusterRadius || o.maxZoom !== this.options.maxZoom;
    this.options = o;
    if (tilesChanged) {
      this.tiles.remove();
      this.tiles = this.tileLayer();
      this.tiles.addTo(this.map);
      this.map.setMaxZoom(o.maxZoom);
    }
    if (clusterChanged) this.setAssets(this.assets, true);
  }

  setStyle(style: MapStyle): void {
    this.style = style;
    this.clearMarkers();
    this.refresh();
  }

  setAssets(assets: AssetView[], force = false): void {
    this.assets = assets;
    this.located = assets.filter((a) => a.location);
    const index = new Supercluster<PointProps, PointProps>({
      radius: Math.max(1, this.options.clusterRadius),
      maxZoom: this.options.clusterRadius > 0 ? Math.max(0, this.options.maxZoom - 1) : -1,
      minPoints: this.options.clusterRadius > 0 ? 2 : Number.MAX_SAFE_INTEGER,
      map: (p) => ({ ...p }),
      reduce: (acc, p) => {
        if (p.rank > acc.rank) {
          acc.rank = p.rank;
          acc.color = p.color;
        }
        acc.anomalies += p.anomalies;
      },
    });
    index.load(
      this.located.map((a, i) => ({
        type: 'Feature' as const,
        geometry: { type: 'Point' as const, coordinates: [a.location?.lon ?? 0, a.location?.lat ?? 0] },
        properties: {
          i,
          rank: RANK[a.level],
          color: this.style.color(a.color),
          anomalies: a.anomaly ? 1 : 0,
        },
      })),
    );
    this.index = index;
    const key = this.located.map((a) => a.key).join(';');
    // Same assets: keep the view the user chose. New assets: show them all.
    if (key !== this.layoutKey || force) {
      this.layoutKey = key;
      this.clearMarkers();
      if (this.located.length > 0) {
        const b = L.latLngBounds(
          this.located.map((a) => [a.location?.lat ?? 0, a.location?.lon ?? 0] as L.LatLngTuple),
        );
        this.map.fitBounds(b, {
          padding: [40, 40],
          maxZoom: Math.min(16, this.options.maxZoom),
          animate: false,
        });
      }
    }
    this.refresh();
  }

  resize(): void {
    this.map.invalidateSize({ animate: false });
  }

  dispose(): void {
    this.disposed = true;
    this.map.off('moveend', this.refresh);
    this.clearMarkers();
    this.map.remove();
  }

  private tileLayer(): L.TileLayer {
    return L.tileLayer(this.options.tileUrl, {
      attribution: this.options.attribution,
      maxZoom: this.options.maxZoom,
      crossOrigin: true,
    });
  }

  private clearMarkers(): void {
    this.layer.clearLayers();
    this.markers.clear();
  }

  /** Draw what is visible: clusters and single assets; markers already on the map are updated in place. */
  private refresh = (): void => {
    if (this.disposed || !this.index) return;
    const t0 = performance.now();
    const b = this.map.getBounds().pad(0.2);
    const bbox: [number, number, number, number] = [
      Math.max(-180, b.getWest()),
      Math.max(-85, b.getSouth()),
      Math.min(180, b.getEast()),
      Math.min(85, b.getNorth()),
    ];
    const zoom = Math.round(this.map.getZoom());
    const items = this.index.getClusters(bbox, zoom);
    const seen = new Set<string>();
    for (const f of items) {
      const p = f.properties as ClusterProps;
      const [lon, lat] = f.geometry.coordinates as [number, number];
      const isCluster = p.cluster === true;
      const asset = isCluster ? undefined : this.located[p.i];
      const key = isCluster ? `c${p.cluster_id}@${zoom}` : `a${asset?.key}`;
      seen.add(key);
      const html = isCluster ? this.clusterHtml(p) : asset ? this.markerHtml(asset) : '';
      let m = this.markers.get(key);
      if (m) {
        const el = m.getElement();
        if (el && el.dataset.html !== html) {
          el.innerHTML = html;
          el.dataset.html = html;
        }
        m.setLatLng([lat, lon]);
        continue;
      }
      const size = isCluster ? clusterSize(p.point_count ?? 0) : 16;
      m = L.marker([lat, lon], {
        icon: L.divIcon({ html, className: '', iconSize: [size, size], iconAnchor: [size / 2, size / 2] }),
        keyboard: false,
        riseOnHover: true,
      });
      if (isCluster) {
        const id = p.cluster_id ?? 0;
        m.on('click', () => {
          const z = Math.min(this.index?.getClusterExpansionZoom(id) ?? zoom + 2, this.options.maxZoom);
          this.map.setView([lat, lon], z);
        });
      } else if (asset) {
        const a = asset;
        m.bindPopup(() => this.popupHtml(a), {
          className: this.style.popup,
          closeButton: true,
          autoPan: true,
        });
        m.on('click', () => this.callbacks.onClick(this.located.find((x) => x.key === a.key) ?? a));
      }
      m.addTo(this.layer);
      const el = m.getElement();
      if (el) el.dataset.html = html;
      this.markers.set(key, m);
    }
    for (const [key, m] of this.markers) {
      if (!seen.has(key)) {
        this.layer.removeLayer(m);
        this.markers.delete(key);
      }
    }
    this.stats.visibleMarkers = this.markers.size;
    this.stats.lastRefreshMs = performance.now() - t0;
    this.container.setAttribute('data-rendered', '1');
  };

  private markerHtml(a: AssetView): string {
    const c = this.style.color(a.color);
    const pulse = a.anomaly ? ` ${this.style.pulse}` : '';
    return `<div class="${this.style.marker}${pulse}" data-asset="${escapeHtml(a.key)}" data-color="${c}" data-level="${a.level}" style="background:${c};--pulse:${c}" title="${escapeHtml(a.name)}"></div>`;
  }

  private clusterHtml(p: ClusterProps): string {
    const n = p.point_count ?? 0;
    const s = clusterSize(n);
    const pulse = p.anomalies > 0 ? ` ${this.style.pulse}` : '';
    const label =
      n >= 10000 ? `${Math.round(n / 1000)}k` : n >= 1000 ? `${(n / 1000).toFixed(1)}k` : String(n);
    return `<div class="${this.style.cluster}${pulse}" data-count="${n}" data-color="${p.color}" style="width:${s}px;height:${s}px;border-color:${p.color};--pulse:${p.color}"><span style="background:${p.color}"></span><b>${label}</b></div>`;
  }

  private popupHtml(a: AssetView): string {
    const latest = this.assets.find((x) => x.key === a.key) ?? a;
    const rows = detailRows(latest)
      .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`)
      .join('');
    const c = this.style.color(latest.color);
    return `<div data-popup="${escapeHtml(latest.key)}"><div class="title"><span style="background:${c}"></span>${escapeHtml(latest.name)}</div><table>${rows}</table></div>`;
  }
}

const clusterSize = (n: number): number => Math.round(Math.min(56, 26 + Math.log10(Math.max(1, n)) * 9));
