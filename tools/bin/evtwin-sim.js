#!/usr/bin/env node
// `evtwin-sim`: a committed shim (npm links no bin into dist/ after npm ci) that runs the compiled simulator CLI.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const compiled = join(__dirname, '..', 'dist', 'sim', 'cli.js');
if (!existsSync(compiled)) {
  console.error(
    'evtwin-sim: tools are not built yet; run `npm run build -w node-red-nodes && npm run build -w tools`.',
  );
  process.exit(1);
}
// `evtwin-sim --list-kinds | head`: a closed pipe ends the output, not in a stack trace.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
require(compiled)
  .main(process.argv.slice(2))
  .then((code) => {
    // exitCode, not exit(): let stdout drain when piped.
    process.exitCode = code;
  })
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
