/**
 * `evtwin audit verify FILE [--json]`: check an audit log's hash chain.
 * Prints `OK <n> entries, last hash <h>` (exit 0), or the first bad line:
 * `TAMPERED line <n>: <why>` / `TRUNCATED line <n>: <why>` (exit 1). Usage errors exit 2.
 */
import { parseArgs } from 'node:util';
import { verifyAuditFile } from 'node-red-contrib-evtwin/runtime';

export const AUDIT_HELP = `evtwin audit verify FILE [--json]

Checks the hash chain of an EVTwin audit log (JSONL). Prints OK with the number of entries and the
last hash (compare both with a copy kept elsewhere, e.g. InfluxDB measurement "audit": cutting lines
off the end cannot be seen in the file alone), or the first tampered or truncated line.
Exit codes: 0 OK, 1 tampered, truncated or unreadable, 2 usage error.`;

export interface CliIo {
  out: (s: string) => void;
  err: (s: string) => void;
}
const stdio: CliIo = {
  out: (s) => process.stdout.write(s + '\n'),
  err: (s) => process.stderr.write(s + '\n'),
};

/** `evtwin audit ...` with the arguments after "audit". */
export async function run(args: string[], io: CliIo = stdio): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    io.err(`evtwin audit: ${(err as Error).message}\n\n${AUDIT_HELP}`);
    return 2;
  }
  const [command, file, ...rest] = parsed.positionals;
  if (parsed.values.help) {
    io.out(AUDIT_HELP);
    return 0;
  }
  if (command !== 'verify' || !file || rest.length > 0) {
    io.err(`evtwin audit: expected "verify FILE"\n\n${AUDIT_HELP}`);
    return 2;
  }
  let verdict;
  try {
    verdict = await verifyAuditFile(file);
  } catch (err) {
    io.err(`evtwin audit: ${file}: ${(err as Error).message}`);
    return 1;
  }
  if (parsed.values.json) io.out(JSON.stringify({ file, ...verdict }));
  else if (verdict.ok) io.out(`OK ${verdict.entries} entries, last hash ${verdict.lastHash}`);
  else
    io.out(
      `${verdict.kind === 'truncated' ? 'TRUNCATED' : 'TAMPERED'} line ${verdict.line}: ${verdict.reason} ` +
        `(${verdict.entries} entries before it verify)`,
    );
  return verdict.ok ? 0 : 1;
}
