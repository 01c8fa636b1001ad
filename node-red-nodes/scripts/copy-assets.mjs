// Node-RED finds a node's editor file beside its .js file and icons in an `icons` folder there:
// copy each src/nodes/<type>/*.html and the shared icons next to the compiled adapters.
import { cpSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const nodesSrc = join(root, 'src', 'nodes');
for (const type of readdirSync(nodesSrc)) {
  const from = join(nodesSrc, type);
  const to = join(root, 'dist', 'nodes', type);
  const html = readdirSync(from).filter((f) => f.endsWith('.html'));
  if (html.length === 0) continue; // shared modules, not a node
  for (const file of html) {
    cpSync(join(from, file), join(to, file));
  }
  if (existsSync(join(root, 'icons'))) cpSync(join(root, 'icons'), join(to, 'icons'), { recursive: true });
}
