/**
 * Pack the node package as npm publishes it, install the tarball into a Node-RED user directory as
 * the palette does, and check what the tarball holds.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, posix, relative, resolve, sep } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The part of package.json the checks read. */
export interface NodePackageJson {
  name: string;
  version: string;
  files?: string[];
  'node-red'?: { version?: string; nodes?: Record<string, string> };
}

export interface Packed {
  tarball: string;
  /** Paths inside the package, `/`-separated, as `npm pack --json` lists them. */
  files: string[];
  size: number;
  unpackedSize: number;
}

export function readPackageJson(pkgDir: string): NodePackageJson {
  return JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as NodePackageJson;
}

/** The node sets a package declares: name → file of its runtime part. */
export function nodeSets(pkg: NodePackageJson): Record<string, string> {
  return pkg['node-red']?.nodes ?? {};
}

/** `npm pack` into destDir. */
export async function pack(pkgDir: string, destDir: string): Promise<Packed> {
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', destDir], {
    cwd: pkgDir,
    maxBuffer: 16 * 1024 * 1024,
  });
  // Lifecycle scripts may print before the JSON.
  const parsed = JSON.parse(stdout.slice(stdout.indexOf('['))) as {
    filename: string;
    size: number;
    unpackedSize: number;
    files: { path: string }[];
  }[];
  const info = parsed[0];
  if (!info) throw new Error(`npm pack printed no result: ${stdout}`);
  return {
    tarball: join(destDir, info.filename),
    files: info.files.map((f) => f.path).sort(),
    size: info.size,
    unpackedSize: info.unpackedSize,
  };
}

/**
 * Install a tarball into a Node-RED user directory with the flags Node-RED's palette manager uses;
 * dependencies come from the registry or npm's cache. Returns the installed package's directory.
 */
export async function installIntoUserDir(userDir: string, tarball: string, pkgName: string): Promise<string> {
  // The package.json Node-RED itself creates in a new user directory.
  writeFileSync(
    join(userDir, 'package.json'),
    JSON.stringify(
      { name: 'node-red-project', description: 'A Node-RED Project', version: '0.0.1', private: true },
      null,
      2,
    ),
  );
  await run(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--no-update-notifier',
      '--prefer-offline',
      '--omit=dev',
      '--engine-strict',
      '--save',
      '--save-prefix=~',
      tarball,
    ],
    { cwd: userDir, maxBuffer: 16 * 1024 * 1024 },
  );
  return join(userDir, 'node_modules', ...pkgName.split('/'));
}

const FORBIDDEN: { pattern: RegExp; why: string }[] = [
  { pattern: /^src\//, why: 'TypeScript sources' },
  { pattern: /(^|\/)tests?\//, why: 'tests' },
  { pattern: /\.tsbuildinfo$/, why: 'tsc build info' },
  { pattern: /(?<!\.d)\.ts$/, why: 'TypeScript source outside src/' },
  { pattern: /\.tgz$/, why: 'a packed tarball' },
  { pattern: /(^|\/)\.env/, why: 'an environment file' },
  { pattern: /(^|\/)node_modules\//, why: 'node_modules' },
  { pattern: /(^|\/)tsconfig[^/]*\.json$/, why: 'a tsconfig' },
];

/** Icons an editor file names (`icon: 'x.svg'`) that must come from the node's own icons folder. */
export function iconsNamedIn(html: string): string[] {
  const icons = new Set<string>();
  for (const m of html.matchAll(/\bicon\s*:\s*['"]([^'"]+)['"]/g)) {
    const icon = m[1] as string;
    if (!icon.includes('/')) icons.add(icon); // "font-awesome/fa-x" and "node-red/x.svg" are Node-RED's own
  }
  return [...icons];
}

/**
 * What the tarball must hold and must not hold, as a list of problems (empty when all is well):
 * every node set's runtime .js, its editor .html beside it and the icons that html names, every
 * example flow, README and LICENSE; no sources, tests, build info, tarballs or env files.
 */
export function tarballProblems(files: readonly string[], pkgDir: string, pkg: NodePackageJson): string[] {
  const problems: string[] = [];
  const has = new Set(files);
  const need = (path: string, why: string): void => {
    if (!has.has(path)) problems.push(`missing ${path} (${why})`);
  };
  need('package.json', 'the manifest');
  need('README.md', 'the palette and npm show it');
  if (!files.some((f) => /^LICEN[CS]E(\.|$)/.test(f))) problems.push('missing LICENSE');
  const sets = Object.entries(nodeSets(pkg));
  if (sets.length === 0) problems.push('package.json declares no "node-red"."nodes"');
  for (const [name, js] of sets) {
    const file = posix.normalize(js);
    need(file, `runtime of node set ${name}`);
    const html = file.replace(/\.js$/, '.html');
    need(html, `editor of node set ${name}`);
    const builtHtml = join(pkgDir, html);
    if (existsSync(builtHtml)) {
      for (const icon of iconsNamedIn(readFileSync(builtHtml, 'utf8'))) {
        need(posix.join(posix.dirname(file), 'icons', icon), `icon of node set ${name}`);
      }
    }
  }
  const examplesDir = join(pkgDir, 'examples');
  const examples = existsSync(examplesDir) ? readdirSync(examplesDir).filter((f) => f.endsWith('.json')) : [];
  if (examples.length === 0) problems.push('no example flows in examples/');
  for (const ex of examples) need(`examples/${ex}`, 'an example flow');
  for (const f of files) {
    for (const { pattern, why } of FORBIDDEN) {
      if (pattern.test(f)) problems.push(`should not ship ${f} (${why})`);
    }
  }
  return problems;
}

/**
 * Compiled files without a source any more (left in dist/ by a rename or a deleted node): they ship
 * but nothing builds them. `dist/a/b.js` needs `src/a/b.ts`.
 */
export function staleBuildOutputs(files: readonly string[], pkgDir: string): string[] {
  return files
    .filter((f) => /^dist\/.*\.(js|d\.ts|js\.map)$/.test(f))
    .filter((f) => {
      const src = f.replace(/^dist\//, 'src/').replace(/(\.d\.ts|\.js\.map|\.js)$/, '.ts');
      return !existsSync(join(pkgDir, src));
    });
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

/**
 * Source maps in an installed package whose sources are neither inside the package nor embedded
 * (`sourcesContent`): a debugger or stack-trace tool follows them to files the user does not have.
 */
export function danglingSourceMaps(installedDir: string): { map: string; source: string }[] {
  const out: { map: string; source: string }[] = [];
  const root = resolve(installedDir);
  for (const file of walk(root).filter((f) => f.endsWith('.map'))) {
    const map = JSON.parse(readFileSync(file, 'utf8')) as {
      sources?: string[];
      sourceRoot?: string;
      sourcesContent?: (string | null)[];
    };
    (map.sources ?? []).forEach((source, i) => {
      if (typeof map.sourcesContent?.[i] === 'string') return;
      const target = resolve(dirname(file), map.sourceRoot ?? '', source);
      const inside = target === root || target.startsWith(root + sep);
      if (!inside || !existsSync(target)) out.push({ map: relative(root, file), source });
    });
  }
  return out;
}
