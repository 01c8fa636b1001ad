#!/usr/bin/env node
// `evtwin-eval`: a committed shim (npm links no bin into dist/ after npm ci) that runs the compiled eval CLI.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const compiled = join(__dirname, '..', 'dist', 'eval', 'cli.js');
if (!existsSync(compiled)) {
  console.error(
    'evtwin-eval: tools are not built yet; run `npm run build -w node-red-nodes && npm run build -w tools`.',
  );
  process.exit(1);
}
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
require(compiled)
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  })
  .catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  });
