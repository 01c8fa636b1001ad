#!/usr/bin/env node
// `npm start`: a committed shim (npm links no bin into dist/ after npm ci) that runs the compiled launcher.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const compiled = join(__dirname, '..', 'dist', 'stack', 'index.js');
if (!existsSync(compiled)) {
  console.error('evtwin-stack: tools are not built yet; run `npm run build` (npm start does it for you).');
  process.exit(1);
}
require(compiled)
  .runStack(process.argv.slice(2), join(__dirname, '..', '..'))
  .then((code) => process.exit(code))
  .catch((err) => {
    // Expected failures (options, a busy data folder) read better without a stack trace.
    console.error(
      process.env.EVTWIN_DEBUG ? err : `evtwin: ${err instanceof Error ? err.message : String(err)}`,
    );
    process.exit(1);
  });
