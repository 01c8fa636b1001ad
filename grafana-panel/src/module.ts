import { FieldConfigProperty, PanelPlugin } from '@grafana/data';
import { TwinPanel } from './components/TwinPanel';
import { DEFAULT_THRESHOLDS } from './model/status';
import { DEFAULT_OPTIONS, FIELD_ROLES, SHAPES, type FieldRole, type TwinOptions } from './types';

const ROLE_TEXT: Record<FieldRole, [string, string]> = {
  asset: ['Asset', 'Asset id (evtwin: asset; InfluxDB: the asset tag). Joins frames.'],
  site: ['Site', 'Site id; with the asset it makes the site/asset reference.'],
  name: ['Name', 'Display name.'],
  kind: ['Kind', 'cnc, robot, flow, pressure, level, chlorine, turbidity, charger: picks the 3D model.'],
  x: ['X', 'Floor position, metres (3D).'],
  y: ['Y', 'Floor position, metres (3D).'],
  z: ['Z', 'Height, metres (3D).'],
  lat: ['Latitude', 'Map position.'],
  lon: ['Longitude', 'Map position.'],
  color: ['Colour', 'Number coloured through the thresholds (default: health).'],
  status: ['Status', 'Text or machine state; fault and offline override the thresholds.'],
  score: ['Anomaly score', '0..1; at or above the anomaly score option the asset pulses.'],
  anomaly: ['Anomaly flag', 'Boolean; true highlights the asset.'],
  time: ['Time', 'Newest row of an asset wins.'],
};

export const plugin = new PanelPlugin<TwinOptions>(TwinPanel)
  .useFieldConfig({
    standardOptions: {
      [FieldConfigProperty.Thresholds]: { defaultValue: DEFAULT_THRESHOLDS },
    },
  })
  .setPanelOptions((builder) => {
    builder
      .addRadio({
        path: 'mode',
        name: 'View',
        defaultValue: DEFAULT_OPTIONS.mode,
        settings: {
          options: [
            { value: '3d', label: '3D floor' },
            { value: 'map', label: 'Map' },
          ],
        },
      })
      .addBooleanSwitch({ path: 'showLegend', name: 'Legend', defaultValue: DEFAULT_OPTIONS.showLegend })
      .addBooleanSwitch({
        path: 'showLabels',
        name: 'Value labels',
        defaultValue: DEFAULT_OPTIONS.showLabels,
        showIf: (o) => o.mode === '3d',
      })
      .addTextInput({
        path: 'labelFields',
        name: 'Label fields',
        description: 'Comma-separated metrics shown under each asset name; empty: the colour field.',
        defaultValue: DEFAULT_OPTIONS.labelFields,
        showIf: (o) => o.mode === '3d' && o.showLabels,
      })
      .addNumberInput({
        path: 'anomalyScore',
        name: 'Anomaly score',
        description: 'Highlight assets whose score is at least this (when no anomaly flag field is present).',
        defaultValue: DEFAULT_OPTIONS.anomalyScore,
        settings: { min: 0, max: 1, step: 0.05 },
      });
    for (const role of FIELD_ROLES) {
      const [name, description] = ROLE_TEXT[role];
      builder.addTextInput({
        path: `mapping.${role}`,
        name,
        description: `${description} Empty: found by name.`,
        category: ['Field mapping'],
        defaultValue: '',
      });
    }
    builder
      .addRadio({
        path: 'clickAction',
        name: 'On click',
        category: ['Interaction'],
        defaultValue: DEFAULT_OPTIONS.clickAction,
        settings: {
          options: [
            { value: 'variable', label: 'Set variable' },
            { value: 'link', label: 'Data link' },
            { value: 'none', label: 'Nothing' },
          ],
        },
      })
      .addTextInput({
        path: 'variable',
        name: 'Variable',
        description: 'Dashboard variable set to the clicked asset (without $).',
        category: ['Interaction'],
        defaultValue: DEFAULT_OPTIONS.variable,
        showIf: (o) => o.clickAction === 'variable',
      })
      .addRadio({
        path: 'variableValue',
        name: 'Variable value',
        category: ['Interaction'],
        defaultValue: DEFAULT_OPTIONS.variableValue,
        settings: {
          options: [
            { value: 'asset', label: 'Asset id' },
            { value: 'ref', label: 'site/asset' },
          ],
        },
        showIf: (o) => o.clickAction === 'variable',
      });
    for (const shape of SHAPES) {
      builder.addTextInput({
        path: `models.${shape}`,
        name: `${shape} model`,
        description: 'glTF/GLB URL (absolute, or relative to the plugin folder); empty: the built-in model.',
        category: ['3D models'],
        defaultValue: '',
        showIf: (o) => o.mode === '3d',
      });
    }
    builder
      .addTextInput({
        path: 'tileUrl',
        name: 'Tile URL',
        description:
          'Template with {z}/{x}/{y} (and optional {s}); point it at a local tile server for offline use.',
        category: ['Map'],
        defaultValue: DEFAULT_OPTIONS.tileUrl,
        showIf: (o) => o.mode === 'map',
      })
      .addTextInput({
        path: 'tileAttribution',
        name: 'Attribution',
        category: ['Map'],
        defaultValue: DEFAULT_OPTIONS.tileAttribution,
        showIf: (o) => o.mode === 'map',
      })
      .addNumberInput({
        path: 'maxZoom',
        name: 'Max zoom',
        category: ['Map'],
        defaultValue: DEFAULT_OPTIONS.maxZoom,
        settings: { min: 1, max: 22, integer: true },
        showIf: (o) => o.mode === 'map',
      })
      .addNumberInput({
        path: 'clusterRadius',
        name: 'Cluster radius (px)',
        description: '0 turns clustering off.',
        category: ['Map'],
        defaultValue: DEFAULT_OPTIONS.clusterRadius,
        settings: { min: 0, max: 200, integer: true },
        showIf: (o) => o.mode === 'map',
      });
    return builder;
  });
