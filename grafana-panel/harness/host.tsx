/**
 * The host page of the harness: plays the part of Grafana for a built plugin. It holds the externals at the
 * versions the plugin was built against, loads dist/module.js through a small AMD `define` shim (the way
 * Grafana's SystemJS does), registers the option editors `plugin.defaults` needs, and renders the panel in a
 * Grafana theme with the data frames it is given. Driven by tests, the benchmark and `npm run preview`.
 */
import React from 'react';
import * as ReactAll from 'react';
import * as ReactDOMAll from 'react-dom';
import { createRoot, type Root } from 'react-dom/client';
import * as emotion from '@emotion/css';
import * as data from '@grafana/data';
import * as ui from '@grafana/ui';
import * as runtime from '@grafana/runtime';
import {
  type DataFrame,
  type DataFrameDTO,
  type PanelPlugin,
  type PanelProps,
  type ScopedVars,
  LoadingState,
  ThemeContext,
  createTheme,
  dateTime,
  standardEditorsRegistry,
  toDataFrame,
} from '@grafana/data';
import { locationService } from '@grafana/runtime';

interface PluginModule {
  plugin: PanelPlugin;
}

import type { HarnessRenderRequest as RenderRequest } from './api';

declare global {
  interface Window {
    define?: ((deps: string[], factory: (...args: unknown[]) => unknown) => void) & { amd?: object };
  }
}

// The option editor ids a panel's builder uses; plugin.defaults looks each one up.
const EDITOR_IDS = [
  'text',
  'number',
  'boolean',
  'radio',
  'select',
  'color',
  'unit',
  'slider',
  'multiSelect',
  'links',
];
standardEditorsRegistry.setInit(() => EDITOR_IDS.map((id) => ({ id, name: id, editor: () => null })));

const externals: Record<string, unknown> = {
  react: { ...ReactAll, default: ReactAll, __useDefault: true },
  'react-dom': { ...ReactDOMAll, default: ReactDOMAll, __useDefault: true },
  '@emotion/css': emotion,
  '@grafana/data': data,
  '@grafana/ui': ui,
  '@grafana/runtime': runtime,
};

function loadAmd(url: string, moduleUri: string): Promise<PluginModule> {
  return new Promise((resolve, reject) => {
    const define = (deps: string[], factory: (...args: unknown[]) => unknown): void => {
      try {
        const args = deps.map((d) => {
          if (d === 'module') return { uri: moduleUri, id: moduleUri };
          if (!(d in externals)) throw new Error(`the plugin needs ${d}, which the host does not provide`);
          return externals[d];
        });
        resolve(factory(...args) as PluginModule);
      } catch (e) {
        reject(e);
      }
    };
    define.amd = {};
    window.define = define;
    const s = document.createElement('script');
    s.src = url;
    s.onerror = () => reject(new Error(`could not load ${url}`));
    document.head.appendChild(s);
  });
}

/** As Grafana's templateSrv for scoped variables: `$name`, `${name}` → the scoped value; others stay. */
function replaceVariables(text: string, scoped?: ScopedVars): string {
  return text.replace(/\$\{(\w+)\}|\$(\w+)/g, (m: string, a?: string, b?: string) => {
    const v = scoped?.[a ?? b ?? '']?.value;
    return v === undefined || v === null ? m : String(v);
  });
}

let plugin: PanelPlugin | undefined;
let root: Root | undefined;
let current: RenderRequest | undefined;

function Panel({ req }: { req: RenderRequest }): React.ReactElement | null {
  const theme = React.useMemo(() => createTheme({ colors: { mode: req.theme ?? 'dark' } }), [req.theme]);
  if (!plugin?.panel) return null;
  const PanelComponent = plugin.panel as React.ComponentType<PanelProps>;
  const width = req.width ?? 900;
  const height = req.height ?? 540;
  const series: DataFrame[] = req.frames.map((f) => toDataFrame(f as DataFrameDTO));
  const now = dateTime();
  const timeRange = { from: dateTime(now).subtract(1, 'hour'), to: now, raw: { from: 'now-1h', to: 'now' } };
  const options = { ...(plugin.defaults as Record<string, unknown>), ...(req.options ?? {}) };
  const mapping = (plugin.defaults as { mapping?: object }).mapping;
  if (mapping && req.options?.mapping) options.mapping = { ...mapping, ...(req.options.mapping as object) };
  document.body.style.background = theme.colors.background.canvas;
  return (
    <ThemeContext.Provider value={theme}>
      <div
        id="panel"
        style={{
          width,
          height,
          margin: 16,
          background: theme.colors.background.primary,
          border: `1px solid ${theme.colors.border.weak}`,
          borderRadius: 2,
          fontFamily: theme.typography.fontFamily,
          color: theme.colors.text.primary,
        }}
      >
        <PanelComponent
          id={1}
          data={{ state: LoadingState.Done, series, timeRange }}
          timeRange={timeRange}
          timeZone="browser"
          options={options}
          fieldConfig={{ defaults: {}, overrides: [] }}
          transparent={false}
          width={width}
          height={height}
          renderCounter={0}
          title="EVTwin"
          eventBus={{} as PanelProps['eventBus']}
          onOptionsChange={() => undefined}
          onFieldConfigChange={() => undefined}
          replaceVariables={replaceVariables}
          onChangeTimeRange={() => undefined}
        />
      </div>
    </ThemeContext.Provider>
  );
}

window.evtwin = {
  async load(pluginId) {
    const base = `/public/plugins/${pluginId}/`;
    const mod = await loadAmd(`${base}module.js`, `${base}module.js`);
    plugin = mod.plugin;
    const meta = (await (await fetch(`${base}plugin.json`)).json()) as PanelPlugin['meta'];
    plugin.meta = { ...meta, baseUrl: base.slice(1), module: `${base}module.js` };
    return { defaults: plugin.defaults };
  },
  render(req) {
    current = req;
    const el = document.getElementById('root');
    if (!el) throw new Error('no #root');
    root ??= createRoot(el);
    root.render(<Panel req={req} />);
  },
  update(frames) {
    if (current) window.evtwin.render({ ...current, frames });
  },
  unmount() {
    root?.unmount();
    root = undefined;
  },
  search: () => locationService.getSearchObject() as Record<string, unknown>,
  colors(mode) {
    const t = createTheme({ colors: { mode } });
    const names = ['green', 'orange', 'red', 'gray'];
    return {
      ...Object.fromEntries(names.map((n) => [n, t.visualization.getColorByName(n)])),
      background: t.colors.background.primary,
    };
  },
};
