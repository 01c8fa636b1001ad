/**
 * Grafana's side for the BUILT evtwin datasource (grafana-datasource/dist/module.js, an AMD module) run in
 * Node: the real @grafana/data and rxjs at the versions the plugin was built against, a @grafana/runtime
 * whose backendSrv behaves as Grafana's data proxy (the `api` route of the built plugin.json: URL from
 * jsonData, the service token from secureJsonData, X-Grafana-User as with `send_user_header = true`), and
 * a templateSrv. @grafana/ui is a placeholder: nothing renders here. Shared by the datasource and panel
 * tests and the stack screenshots, so the artefact is loaded one way only.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { runInThisContext } from 'node:vm';

export const DS_DIR = resolve(__dirname, '..', '..', '..', 'grafana-datasource');
export const DS_DIST = join(DS_DIR, 'dist');
// The plugin's own dependencies: what Grafana provides it.
const pluginRequire = createRequire(join(DS_DIR, 'package.json'));

export interface Observable<T> {
  subscribe(o: { next?: (v: T) => void; error?: (e: unknown) => void; complete?: () => void }): {
    unsubscribe(): void;
  };
}
export interface Rxjs {
  firstValueFrom<T>(o: Observable<T>): Promise<T>;
  Observable: new <T>(f: unknown) => Observable<T>;
}
/** The slice of @grafana/data that callers use (the plugin gets the whole module, same instance). */
export interface GrafanaData {
  dateTime(ms: number): unknown;
  FieldType: Record<string, string>;
  toDataFrameDTO(frame: unknown): unknown;
}
export interface Route {
  path: string;
  url: string;
  headers?: { name: string; content: string }[];
}
export interface PluginJson {
  id: string;
  routes: Route[];
}
export interface TemplateSrvLike {
  getVariables(): { name: string }[];
  replace(text?: string, scoped?: unknown, format?: string): string;
}
export interface ProxyOptions {
  url: string;
  method?: string;
  data?: unknown;
  headers?: Record<string, string>;
}
export interface BackendSrvLike {
  fetch(o: ProxyOptions): Observable<unknown>;
}

let runtime: { grafanaData: GrafanaData; rxjs: Rxjs } | undefined;

/** @grafana/data and rxjs; @grafana/data expects a browser, so jsdom's window goes in first (as in jest). */
export function grafanaRuntime(): { grafanaData: GrafanaData; rxjs: Rxjs } {
  if (runtime) return runtime;
  const { JSDOM } = pluginRequire('jsdom') as {
    JSDOM: new (html: string, o: { url: string }) => { window: Record<string, unknown> };
  };
  const { window } = new JSDOM('<!doctype html><html><head></head><body></body></html>', {
    url: 'http://grafana.local/',
  });
  const g = globalThis as Record<string, unknown>;
  for (const k of [
    'window',
    'document',
    'localStorage',
    'HTMLElement',
    'Element',
    'Node',
    'getComputedStyle',
  ])
    if (g[k] === undefined) g[k] = window[k];
  runtime = {
    grafanaData: pluginRequire('@grafana/data') as GrafanaData,
    rxjs: pluginRequire('rxjs') as Rxjs,
  };
  return runtime;
}

export function readPluginJson(dist = DS_DIST): PluginJson {
  return JSON.parse(readFileSync(join(dist, 'plugin.json'), 'utf8')) as PluginJson;
}

export interface ProxySettings {
  uid: string;
  jsonData: Record<string, string>;
  secureJsonData: Record<string, string>;
  /** Who Grafana says is logged in (X-Grafana-User); undefined: send_user_header is off. */
  user?: () => string | undefined;
}

/** Grafana's data proxy: /api/datasources/proxy/uid/<uid>/<route path>/<rest> → the route's URL + rest. */
export function dataProxy(pluginJson: PluginJson, s: ProxySettings): BackendSrvLike {
  const { rxjs } = grafanaRuntime();
  const render = (t: string): string =>
    t.replace(/\{\{\s*\.(JsonData|SecureJsonData)\.(\w+)\s*\}\}/g, (_m, where: string, key: string) =>
      where === 'JsonData' ? (s.jsonData[key] ?? '') : (s.secureJsonData[key] ?? ''),
    );
  return {
    fetch(o: ProxyOptions): Observable<unknown> {
      return new rxjs.Observable<unknown>(
        (sub: { next(v: unknown): void; error(e: unknown): void; complete(): void }) => {
          const ac = new AbortController();
          (async () => {
            const prefix = `/api/datasources/proxy/uid/${s.uid}/`;
            if (!o.url.startsWith(prefix)) throw new Error(`the plugin called ${o.url}, not its data proxy`);
            const proxyPath = o.url.slice(prefix.length);
            const route = pluginJson.routes.find((r) => proxyPath.startsWith(r.path));
            if (!route) return { status: 404, statusText: 'Not Found', data: { message: 'no route' } };
            const headers: Record<string, string> = { ...o.headers };
            for (const h of route.headers ?? []) headers[h.name] = render(h.content);
            const user = s.user?.();
            if (user !== undefined) headers['X-Grafana-User'] = user;
            if (o.data !== undefined) headers['Content-Type'] = 'application/json';
            let res: globalThis.Response;
            try {
              res = await fetch(render(route.url) + proxyPath.slice(route.path.length), {
                method: o.method ?? 'GET',
                headers,
                signal: ac.signal,
                ...(o.data !== undefined ? { body: JSON.stringify(o.data) } : {}),
              });
            } catch {
              // What Grafana answers when the upstream cannot be reached.
              return { status: 502, statusText: 'Bad Gateway', data: { message: 'Bad Gateway' } };
            }
            const text = await res.text();
            let data: unknown = text;
            try {
              data = JSON.parse(text);
            } catch {
              /* not JSON: keep the text */
            }
            return { status: res.status, statusText: res.statusText, data };
          })().then(
            (r) => {
              if (r.status >= 200 && r.status < 300) {
                sub.next({
                  ...r,
                  ok: true,
                  config: o,
                  headers: {},
                  url: o.url,
                  redirected: false,
                  type: 'basic',
                });
                sub.complete();
              } else sub.error({ ...r, config: o }); // a FetchError, as backendSrv throws
            },
            (err: unknown) => sub.error(err),
          );
          return () => ac.abort();
        },
      );
    },
  };
}

/** A dashboard without variables. */
export const noVariables: TemplateSrvLike = { getVariables: () => [], replace: (t?: string) => t ?? '' };

/**
 * Evaluate the built module.js as Grafana's SystemJS does: `define(deps, factory)` with the externals
 * Grafana provides; a dependency it does not provide is an error. Returns the module's `plugin` export.
 */
export function loadDatasourcePlugin<P>(o: {
  backendSrv: BackendSrvLike;
  templateSrv: TemplateSrvLike;
  dist?: string;
}): P {
  const dist = o.dist ?? DS_DIST;
  const { grafanaData, rxjs } = grafanaRuntime();
  const pluginJson = readPluginJson(dist);
  const externals: Record<string, unknown> = {
    '@grafana/data': grafanaData,
    '@grafana/runtime': { getBackendSrv: () => o.backendSrv, getTemplateSrv: () => o.templateSrv },
    '@grafana/ui': new Proxy({}, { get: () => () => null }),
    react: pluginRequire('react'),
    rxjs,
    module: { uri: `/public/plugins/${pluginJson.id}/module.js` },
  };
  let plugin: P | undefined;
  const define = (deps: string[], factory: (...mods: unknown[]) => { plugin: P }): void => {
    const missing = deps.filter((d) => !(d in externals));
    if (missing.length)
      throw new Error(`module.js needs externals Grafana does not provide: ${missing.join()}`);
    plugin = factory(...deps.map((d) => externals[d])).plugin;
  };
  const file = join(dist, 'module.js');
  (
    runInThisContext(`(function (define) {${readFileSync(file, 'utf8')}\n})`, { filename: file }) as (
      d: typeof define,
    ) => void
  )(define);
  if (!plugin) throw new Error('module.js defined no plugin');
  return plugin;
}

/**
 * A datasource instance as Grafana creates it from saved settings (`url` = the twin API's base URL,
 * `token` = the service token), queries going through the data-proxy stand-in.
 */
export function createDataSource<D>(o: {
  uid: string;
  url: string;
  token: string;
  user?: () => string | undefined;
  templateSrv?: TemplateSrvLike;
  dist?: string;
}): D {
  const pluginJson = readPluginJson(o.dist);
  const jsonData = { url: o.url.replace(/\/$/, '') };
  const secureJsonData = { serviceToken: o.token };
  const backendSrv = dataProxy(pluginJson, {
    uid: o.uid,
    jsonData,
    secureJsonData,
    ...(o.user ? { user: o.user } : {}),
  });
  const plugin = loadDatasourcePlugin<{ DataSourceClass: new (settings: unknown) => D }>({
    backendSrv,
    templateSrv: o.templateSrv ?? noVariables,
    ...(o.dist ? { dist: o.dist } : {}),
  });
  return new plugin.DataSourceClass({
    id: 1,
    uid: o.uid,
    type: pluginJson.id,
    name: 'EVTwin',
    access: 'proxy',
    url: `/api/datasources/proxy/uid/${o.uid}`,
    jsonData,
    meta: pluginJson,
    readOnly: false,
  });
}

/** A dashboard query request as Grafana sends it to `query()`. */
export function queryRequest(targets: unknown[], from: number, to: number, rawTo: string = String(to)) {
  const { grafanaData } = grafanaRuntime();
  return {
    requestId: `q${++reqSeq}`,
    app: 'dashboard',
    timezone: 'utc',
    interval: '1s',
    intervalMs: 1000,
    maxDataPoints: 1000,
    range: {
      from: grafanaData.dateTime(from),
      to: grafanaData.dateTime(to),
      raw: { from: String(from), to: rawTo },
    },
    scopedVars: {},
    targets,
    startTime: Date.now(),
  };
}
let reqSeq = 0;

/** `query()` answers with an Observable or a Promise: the first answer either way. */
export async function firstAnswer<R>(out: Observable<R> | Promise<R>): Promise<R> {
  return 'subscribe' in out ? grafanaRuntime().rxjs.firstValueFrom(out) : out;
}
