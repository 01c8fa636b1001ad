/** The simulator CLI (`evtwin-sim`) run in-process, as the charger tests drive it. */
import { main, type CliIo } from '../../src/sim/cli';

/** Run `evtwin-sim argv`; its exit code and its stdout and stderr together, in the order written. */
export async function runSim(argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const io: CliIo = {
    stdout: (t) => void (out += t),
    stderr: (t) => void (out += t),
    stderrIsTTY: false,
  };
  const code = await main(argv, io);
  return { code, out };
}
