/** Port choice for the local stack: the well-known port unless it is taken, then a free one (and say so). */
import { createServer } from 'node:net';
import { freePort } from '../services';

/** True when nothing holds 127.0.0.1:port (a listener on 0.0.0.0 also makes the bind fail). */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

export interface PortChoice {
  port: number;
  /** Why the port is not the default one; undefined when it is. */
  note?: string;
}

/**
 * The port to use for a service: the one in env var `envName` when set (it must be free), else
 * `preferred` when free, else any free port.
 */
export async function choosePort(service: string, preferred: number, envName: string): Promise<PortChoice> {
  const fromEnv = process.env[envName];
  if (fromEnv !== undefined && fromEnv !== '') {
    const port = Number(fromEnv);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new Error(`${envName}=${fromEnv} is not a port number`);
    }
    if (port === 0) return { port: await freePort(), note: `${envName}=0: any free port` };
    if (!(await portIsFree(port))) throw new Error(`${envName}=${port}: port ${port} is already in use`);
    return { port };
  }
  if (await portIsFree(preferred)) return { port: preferred };
  const port = await freePort();
  return {
    port,
    note: `port ${preferred} is in use by another process (left alone): ${service} uses ${port} instead`,
  };
}
