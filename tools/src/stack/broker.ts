/**
 * The local stack's MQTT broker: Mosquitto when installed (MQTT v5, shared subscriptions), else an
 * embedded aedes broker (MQTT 3.1.1 only) so `npm start` works without any system broker.
 */
import type { ChildProcess } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { findExecutable, startMosquitto, type Service } from '../services';

export interface Broker {
  kind: 'mosquitto' | 'aedes';
  url: string;
  port: number;
  /** The MQTT protocol level clients must use: 5 on Mosquitto, 4 (3.1.1) on aedes. */
  protocolVersion: 4 | 5;
  /** The child process when the broker is a process we started (Mosquitto). */
  process?: ChildProcess;
  stop(): Promise<void>;
}

export interface BrokerOptions {
  dataDir: string;
  port: number;
  /** Force the embedded broker even when Mosquitto is installed. */
  embedded?: boolean;
  /** Extra mosquitto.conf lines (password and ACL files), made only when Mosquitto is the broker. */
  mosquittoConfig?: () => string[];
  log?: (line: string) => void;
}

export async function startBroker(opts: BrokerOptions): Promise<Broker> {
  if (!opts.embedded && findExecutable('mosquitto')) {
    const svc: Service = await startMosquitto({
      dataDir: opts.dataDir,
      port: opts.port,
      detached: true,
      ...(opts.mosquittoConfig ? { extraConfig: opts.mosquittoConfig() } : {}),
      ...(opts.log ? { log: opts.log } : {}),
    });
    return {
      kind: 'mosquitto',
      url: svc.url,
      port: svc.port,
      protocolVersion: 5,
      process: svc.process,
      stop: () => svc.stop(),
    };
  }
  return startAedes(opts.port);
}

/** aedes 1.x is ESM-only: load it with a dynamic import from this CommonJS module. */
async function startAedes(port: number): Promise<Broker> {
  const { Aedes } = await import('aedes');
  const aedes = await Aedes.createBroker();
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    aedes.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  // Port 0 asks the system for a free one: report the one it gave.
  const bound = (server.address() as { port: number }).port;
  return {
    kind: 'aedes',
    url: `mqtt://127.0.0.1:${bound}`,
    port: bound,
    protocolVersion: 4,
    async stop() {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
