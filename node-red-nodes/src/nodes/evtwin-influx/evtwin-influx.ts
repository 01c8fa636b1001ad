/** evtwin-influx: the InfluxDB 1.x connection (config node); owns the one writer its out nodes share. */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { NodeAPI } from 'node-red';
import { InfluxWriter } from '../../runtime';
import { asError } from '../shared/status';
import type { InfluxConfigDef, InfluxConfigNode, InfluxCredentials } from './config';

const positive = (v: string | undefined, fallback: number, what: string): number => {
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${what} must be a positive number, got "${v}"`);
  return n;
};

function checkUrl(v: string): string {
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw new Error(`url "${v}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new Error(`url "${v}" must be http:// or https://`);
  return v;
}

export = function register(RED: NodeAPI): void {
  function EvtwinInfluxNode(this: InfluxConfigNode, def: InfluxConfigDef): void {
    RED.nodes.createNode(this, def);
    const userDir = RED.settings.userDir ?? join(homedir(), '.node-red');
    try {
      const creds = this.credentials ?? {};
      this.connection = {
        url: checkUrl(def.url || 'http://127.0.0.1:8086'),
        database: def.database || 'evtwin',
        ...(creds.username ? { username: creds.username, password: creds.password ?? '' } : {}),
      };
      this.writer = new InfluxWriter({
        url: this.connection.url,
        database: this.connection.database,
        ...(def.retentionPolicy ? { retentionPolicy: def.retentionPolicy } : {}),
        ...(creds.username ? { username: creds.username, password: creds.password ?? '' } : {}),
        batchSize: Math.round(positive(def.batchSize, 5000, 'batch size')),
        flushMs: positive(def.flushMs, 1000, 'flush interval'),
        flushWhenFree: def.flushWhenFree === true,
        spoolMaxBytes: Math.round(positive(def.spoolMaxMB, 100, 'spool size') * 1_048_576),
        spoolDir: def.spoolDir?.trim() || join(userDir, 'evtwin-spool', this.id),
        gzip: def.gzip !== false,
        createDatabase: def.createDatabase !== false,
      });
      this.writer.on('warning', (message) => this.warn(message));
    } catch (err) {
      this.configError = asError(err).message;
      this.error(`configuration: ${this.configError}`);
    }

    this.on('close', (_removed: boolean, done: () => void) => {
      if (!this.writer) return done();
      // Writes what is in memory, or spools it; the spool is replayed at the next start.
      this.writer.close().then(done, (err: unknown) => {
        this.error(`close: ${asError(err).message}`);
        done();
      });
    });
  }
  RED.nodes.registerType<InfluxConfigNode, InfluxConfigDef, unknown, InfluxCredentials>(
    'evtwin-influx',
    EvtwinInfluxNode,
    {
      credentials: { username: { type: 'text' }, password: { type: 'password' } },
    },
  );
};
