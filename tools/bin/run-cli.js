// The one body of the committed bin shims (npm links no bin into dist/ after npm ci): run a compiled
// CLI's `main(args) → exit code`.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');

module.exports = function runCli(name, compiledPath) {
  const compiled = join(__dirname, '..', 'dist', compiledPath);
  if (!existsSync(compiled)) {
    console.error(`${name}: tools are not built yet; run \`npm run build\`.`);
    process.exit(1);
  }
  // `… | head`: a closed pipe ends the output, not in a stack trace.
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
      console.error(
        process.env.EVTWIN_DEBUG ? err : `${name}: ${err instanceof Error ? err.message : String(err)}`,
      );
      process.exitCode = 1;
    });
};
