/**
 * What Grafana's plugin validator checks on a plugin archive without network (NOTES.md), as a pure
 * function of the archive bytes and the plugin's package.json version. Returns one line per problem.
 */
import { readZip, type ZipEntry } from './zip';

export const PLUGIN_ID_PATTERN = /^[a-z0-9]+(-[a-z0-9]+)*-(panel|datasource|app)$/;

// Traces of AngularJS plugins (deprecated, refused by Grafana 12+).
const ANGULAR = [
  /\b(?:MetricsPanelCtrl|PanelCtrl|QueryCtrl|ConfigCtrl|AnnotationsQueryCtrl)\b/,
  /angular\.module\s*\(/,
  /['"]app\/plugins\/sdk['"]/,
];
const UNSAFE_SVG = [
  /<script[\s>]/i,
  /\son[a-z]+\s*=/i,
  /(?:href|src)\s*=\s*["']\s*javascript:/i,
  /<foreignObject[\s>]/i,
];
const TEMPLATE_README = [
  /plugin template/i,
  /This template is a starting point/i,
  /Uncomment and replace the content here before publishing/i,
];

interface PluginJson {
  type?: string;
  name?: string;
  id?: string;
  backend?: boolean;
  alerting?: boolean;
  info?: {
    description?: string;
    keywords?: string[];
    version?: string;
    updated?: string;
    author?: { name?: string };
    logos?: { small?: string; large?: string };
    screenshots?: { name?: string; path?: string }[];
  };
  dependencies?: { grafanaDependency?: string };
}

export interface ValidationReport {
  pluginId?: string;
  root?: string;
  files: string[];
  problems: string[];
}

export function validatePluginArchive(zip: Buffer, packageVersion: string): ValidationReport {
  const problems: string[] = [];
  let entries: ZipEntry[];
  try {
    entries = readZip(zip);
  } catch (e) {
    return { files: [], problems: [`archive unreadable: ${e instanceof Error ? e.message : String(e)}`] };
  }
  const files = entries.filter((e) => !e.name.endsWith('/')).map((e) => e.name);
  const roots = [...new Set(files.map((f) => f.split('/')[0] ?? ''))];
  if (roots.length !== 1 || files.some((f) => !f.includes('/'))) {
    problems.push(`archive must hold exactly one root folder, found: ${roots.join(', ') || 'none'}`);
  }
  const root = roots[0] ?? '';
  const file = (rel: string): ZipEntry | undefined => entries.find((e) => e.name === `${root}/${rel}`);
  const pj = file('plugin.json');
  if (!pj) {
    problems.push(`${root}/plugin.json missing`);
    return { root, files, problems };
  }
  let meta: PluginJson;
  try {
    meta = JSON.parse(pj.data.toString('utf8')) as PluginJson;
  } catch (e) {
    problems.push(`plugin.json is not JSON: ${e instanceof Error ? e.message : String(e)}`);
    return { root, files, problems };
  }
  const id = meta.id ?? '';
  if (root !== id) problems.push(`root folder "${root}" must be named after the plugin id "${id}"`);

  const required: [string, unknown][] = [
    ['type', meta.type],
    ['name', meta.name],
    ['id', meta.id],
    ['info.author.name', meta.info?.author?.name],
    ['info.logos.small', meta.info?.logos?.small],
    ['info.logos.large', meta.info?.logos?.large],
    ['info.version', meta.info?.version],
    ['info.updated', meta.info?.updated],
    ['dependencies.grafanaDependency', meta.dependencies?.grafanaDependency],
  ];
  for (const [k, v] of required)
    if (typeof v !== 'string' || v.trim() === '') problems.push(`plugin.json: ${k} missing`);
  if (id && !PLUGIN_ID_PATTERN.test(id))
    problems.push(`plugin id "${id}" does not match ${PLUGIN_ID_PATTERN}`);
  else if (id && meta.type && !id.endsWith(`-${meta.type}`))
    problems.push(`plugin id "${id}" must end with -${meta.type}`);
  if (meta.info?.version && /%VERSION%/.test(meta.info.version))
    problems.push('info.version is the %VERSION% placeholder');
  if (meta.info?.updated && /%TODAY%/.test(meta.info.updated))
    problems.push('info.updated is the %TODAY% placeholder');
  if (meta.info?.version && meta.info.version !== packageVersion)
    problems.push(`info.version ${meta.info.version} differs from package.json version ${packageVersion}`);
  if (!meta.info?.description?.trim()) problems.push('plugin.json: info.description missing');
  if (!meta.info?.keywords?.length) problems.push('plugin.json: info.keywords missing');
  if (meta.alerting === true && meta.backend !== true) problems.push('alerting: true needs backend: true');

  for (const rel of ['module.js', 'module.js.map', 'README.md', 'CHANGELOG.md', 'LICENSE'])
    if (!file(rel)) problems.push(`${rel} missing`);
  const readme = file('README.md')?.data.toString('utf8') ?? '';
  if (readme && TEMPLATE_README.some((r) => r.test(readme)))
    problems.push('README.md is still the create-plugin template');

  const logos = [meta.info?.logos?.small, meta.info?.logos?.large].filter((p): p is string => !!p);
  for (const p of logos) if (!file(p)) problems.push(`logo ${p} not in the archive`);
  for (const s of meta.info?.screenshots ?? [])
    if (!s.path || !file(s.path)) problems.push(`screenshot ${s.path ?? '(no path)'} not in the archive`);

  for (const e of entries) {
    if (e.name.endsWith('.svg')) {
      const svg = e.data.toString('utf8');
      for (const r of UNSAFE_SVG) if (r.test(svg)) problems.push(`unsafe SVG ${e.name}: matches ${r}`);
    }
    if (/\.js$/.test(e.name)) {
      const js = e.data.toString('utf8');
      for (const r of ANGULAR) if (r.test(js)) problems.push(`Angular in ${e.name}: matches ${r}`);
    }
  }
  return { pluginId: id, root, files, problems };
}
