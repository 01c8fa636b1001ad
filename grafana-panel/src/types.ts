/** Panel options (saved in the dashboard JSON). Field names left empty are found by name (model/fields.ts). */
export type TwinMode = '3d' | 'map';
export type ClickAction = 'variable' | 'link' | 'none';

/** The roles a data field can play; each maps to a field name, or '' to detect it. */
export const FIELD_ROLES = [
  'asset',
  'site',
  'name',
  'kind',
  'x',
  'y',
  'z',
  'lat',
  'lon',
  'color',
  'status',
  'score',
  'anomaly',
  'time',
] as const;
export type FieldRole = (typeof FIELD_ROLES)[number];
export type FieldMapping = Record<FieldRole, string>;

/** Model shapes drawn for asset kinds (sensors of the water network share one). */
export const SHAPES = ['cnc', 'robot', 'sensor', 'charger', 'generic'] as const;
export type Shape = (typeof SHAPES)[number];

export interface TwinOptions {
  mode: TwinMode;
  mapping: FieldMapping;
  /** Comma-separated metric names shown as value labels; empty: the colour field. */
  labelFields: string;
  showLabels: boolean;
  showLegend: boolean;
  /** Anomaly score (0..1) above which an asset is highlighted, when no anomaly field says so. */
  anomalyScore: number;
  clickAction: ClickAction;
  /** Dashboard variable set on click (without `var-`). */
  variable: string;
  /** `asset` sets the asset id, `ref` sets `site/asset`. */
  variableValue: 'asset' | 'ref';
  /** glTF/GLB URL per shape; empty: the procedural model. Relative URLs resolve against the plugin's public folder. */
  models: Record<Shape, string>;
  tileUrl: string;
  tileAttribution: string;
  maxZoom: number;
  /** Cluster radius in screen pixels; 0 turns clustering off. */
  clusterRadius: number;
}

export const DEFAULT_MAPPING: FieldMapping = {
  asset: '',
  site: '',
  name: '',
  kind: '',
  x: '',
  y: '',
  z: '',
  lat: '',
  lon: '',
  color: '',
  status: '',
  score: '',
  anomaly: '',
  time: '',
};

export const DEFAULT_TILE_URL = 'https://tile.openstreetmap.org/{z}/{x}/{y}.png';
export const DEFAULT_ATTRIBUTION = '&copy; OpenStreetMap contributors';

export const DEFAULT_OPTIONS: TwinOptions = {
  mode: '3d',
  mapping: DEFAULT_MAPPING,
  labelFields: '',
  showLabels: true,
  showLegend: true,
  anomalyScore: 0.8,
  clickAction: 'variable',
  variable: 'asset',
  variableValue: 'asset',
  models: { cnc: '', robot: '', sensor: '', charger: '', generic: '' },
  tileUrl: DEFAULT_TILE_URL,
  tileAttribution: DEFAULT_ATTRIBUTION,
  maxZoom: 19,
  clusterRadius: 60,
};
