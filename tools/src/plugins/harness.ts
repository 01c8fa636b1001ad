/**
 * Serves the panel harness on 127.0.0.1: the host page (grafana-panel/harness/host.tsx, bundled with esbuild
 * from the workspace's own React and
 * @grafana packages), each built plugin under /public/plugins/<id>/ as Grafana would, plain SVG map tiles
 * (offline), and optional preview frames. Used by the browser tests, the benchmark and `npm run preview`.
 */
import { createServer, type Server } from 'node:http';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { build } from 'esbuild';

const REPO = resolve(__dirname, '..', '..', '..');
export const PANEL_DIR = join(REPO, 'grafana-panel');
const HOST_ENTRY = join(PANEL_DIR, 'harness', 'host.tsx');
export const PLUGIN_DIRS: Record<string, string> = {
  'evtwin-twin-panel': join(PANEL_DIR, 'dist'),
  'evtwin-twin-datasource': join(REPO, 'grafana-datasource', 'dist'),
};

const TYPES: Record<string, string> = {
  '.js': 'text/javascript',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.html': 'text/html',
  '.css': 'text/css',
  '.md': 'text/markdown',
  '.glb': 'model/gltf-binary',
  '.gltf': 'model/gltf+json',
};

export interface Harness {
  url: string;
  port: number;
  close(): Promise<void>;
}

export interface HarnessOptions {
  port?: number;
  /** Frames served at /frames.json (the preview page renders them). */
  frames?: (query: URLSearchParams) => unknown;
  /** Extra files by URL path (e.g. a test's glTF under /public/plugins/<id>/models/), served before the plugins'. */
  files?: Record<string, string | Buffer>;
}

/** esbuild bundle of host.tsx; production React so that timings resemble Grafana's. */
export async function bundleHost(): Promise<string> {
  const out = await build({
    entryPoints: [HOST_ENTRY],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    minify: true,
    jsx: 'automatic',
    define: { 'process.env.NODE_ENV': '"production"', global: 'window' },
    // The host needs no CSS of its own: Grafana components style themselves with emotion.
    loader: {
      '.css': 'empty',
      '.svg': 'dataurl',
      '.png': 'dataurl',
      '.woff': 'empty',
      '.woff2': 'empty',
      '.ttf': 'empty',
    },
    logLevel: 'error',
  });
  const file = out.outputFiles[0];
  if (!file) throw new Error('esbuild produced nothing');
  return file.text;
}

const page = (preview: boolean): string => `<!doctype html>
<html><head><meta charset="utf-8"><title>EVTwin panel harness</title>
<script>window.grafanaBootData = { settings: { appSubUrl: '', buildInfo: { version: '13.1.0' }, featureToggles: {} }, user: { theme: 'dark', timezone: 'browser', orgRole: 'Viewer' }, navTree: [], assets: { dark: '', light: '' } };</script>
<style>body{margin:0}</style>
</head><body><div id="root"></div>
<script src="/host.js"></script>
${preview ? PREVIEW_SCRIPT : ''}
</body></html>`;

// The preview: the frames at /frames.json, refreshed every second; ?mode=map|3d, ?theme=light|dark,
// ?site= (3D defaults to plant-a, the site with floor positions), ?tiles= a tile URL template.
const PREVIEW_SCRIPT = `<script>
(async () => {
  const q = new URLSearchParams(location.search);
  const mode = q.get('mode') || '3d';
  const site = q.get('site') || (mode === '3d' ? 'plant-a' : '');
  const get = async () => (await fetch('/frames.json?site=' + encodeURIComponent(site))).json();
  await window.evtwin.load('evtwin-twin-panel');
  window.evtwin.render({ frames: await get(), theme: q.get('theme') || 'dark', width: innerWidth - 34, height: innerHeight - 34,
    options: { mode, tileUrl: q.get('tiles') || '/tiles/{z}/{x}/{y}.svg', tileAttribution: 'harness tiles' } });
  setInterval(async () => window.evtwin.update(await get()), 1000);
})();
</script>`;

/** A plain tile: land colour, a grid, and the tile's coordinates (no network needed). */
function tile(z: string, x: string, y: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256"><rect width="256" height="256" fill="#2b2f36"/><path d="M0 0H256V256" fill="none" stroke="#3b414b" stroke-width="2"/><path d="M0 128H256M128 0V256" stroke="#33383f"/><text x="8" y="20" font-family="sans-serif" font-size="11" fill="#59616d">${z}/${x}/${y}</text></svg>`;
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const host = await bundleHost();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const send = (status: number, type: string, body: string | Buffer): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (url.pathname === '/' || url.pathname === '/index.html')
      return send(200, TYPES['.html'] ?? '', page(false));
    if (url.pathname === '/preview') return send(200, TYPES['.html'] ?? '', page(true));
    if (url.pathname === '/host.js') return send(200, TYPES['.js'] ?? '', host);
    if (url.pathname === '/frames.json')
      return opts.frames
        ? send(200, 'application/json', JSON.stringify(opts.frames(url.searchParams)))
        : send(404, 'text/plain', 'no frames');
    const t = /^\/tiles\/(\d+)\/(\d+)\/(\d+)\.svg$/.exec(url.pathname);
    if (t) return send(200, TYPES['.svg'] ?? '', tile(t[1] ?? '', t[2] ?? '', t[3] ?? ''));
    const extra = opts.files?.[url.pathname];
    if (extra !== undefined)
      return send(200, TYPES[extname(url.pathname)] ?? 'application/octet-stream', extra);
    const p = /^\/public\/plugins\/([a-z0-9-]+)\/(.+)$/.exec(url.pathname);
    const dir = p ? PLUGIN_DIRS[p[1] ?? ''] : undefined;
    if (p && dir) {
      const file = normalize(join(dir, decodeURIComponent(p[2] ?? '')));
      if (file.startsWith(dir + sep) && existsSync(file) && statSync(file).isFile())
        return send(200, TYPES[extname(file)] ?? 'application/octet-stream', readFileSync(file));
    }
    send(404, 'text/plain', 'not found');
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 0, '127.0.0.1', () => ok());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}
