/**
 * evtwin-ocpp: the OCPP-J central system as a config node. Charge points connect to
 * ws(s)://host:port/<prefix>/<site>/<cp> with HTTP basic auth <cp>:<registry token>; the registry
 * (evtwin-registry) decides who may connect and revocations disconnect at once. Logic:
 * runtime/ocppServer.ts and core/ocpp.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { NodeAPI } from 'node-red';
import { entryId, verifyToken } from '../../core/registry';
import { OcppCentralSystem, type CredentialCheck } from '../../runtime/ocppServer';
import type { RegistryConfigNode } from '../evtwin-registry/config';
import { asError } from '../shared/status';
import type { OcppConfigDef, OcppConfigNode, OcppCredentials } from './config';

const list = (v: string | undefined): string[] =>
  (v ?? '')
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter((s) => s !== '');

function num(v: string | undefined, fallback: number, what: string, min = 0): number {
  if (v === undefined || String(v).trim() === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`${what} must be a number >= ${min}, got "${v}"`);
  return n;
}

/** The registry as the central system sees it: charge-point entries only, fingerprint = token hash. */
function registryCheck(registry: RegistryConfigNode): CredentialCheck {
  return {
    verify(site, asset, password) {
      const index = registry.service?.index();
      if (!index) return { ok: false, reason: 'registry-unavailable' };
      const v = verifyToken(index, password, site, asset);
      if (!v.ok) return { ok: false, reason: v.reason };
      if (v.entry.kind !== 'charge-point') return { ok: false, reason: 'not-a-charge-point' };
      return { ok: true, fingerprint: v.entry.tokenHash };
    },
    current(site, asset) {
      const e = registry.service?.index()?.byId.get(entryId(site, asset));
      return e && e.revokedAt === undefined && e.kind === 'charge-point' ? e.tokenHash : undefined;
    },
  };
}

export = function register(RED: NodeAPI): void {
  function EvtwinOcppNode(this: OcppConfigNode, def: OcppConfigDef): void {
    RED.nodes.createNode(this, def);
    const creds: OcppCredentials = this.credentials ?? {};
    const log = (level: 'info' | 'warn' | 'error', text: string): void =>
      level === 'info' ? this.log(text) : level === 'warn' ? this.warn(text) : this.error(text);
    let closed = false;
    try {
      const registry = RED.nodes.getNode(def.registry) as RegistryConfigNode | null;
      if (!registry) throw new Error('no evtwin-registry selected: charge points are checked against it');
      this.audit = registry.audit;
      const host = def.host?.trim() || '127.0.0.1';
      const port = num(def.port, 9220, 'port');
      if (!Number.isInteger(port) || port > 65535)
        throw new Error(`port must be 0..65535, got "${def.port}"`);
      let tls: { cert: string; key: string } | undefined;
      if (def.tls) {
        if (!creds.tlsCert || !creds.tlsKey)
          throw new Error('TLS (security profile 2) needs a certificate and key');
        tls = { cert: creds.tlsCert, key: creds.tlsKey };
      }
      const userDir = RED.settings.userDir ?? join(homedir(), '.node-red');
      const central = new OcppCentralSystem({
        host,
        port,
        pathPrefix: def.pathPrefix?.trim() || '/ocpp',
        ...(def.defaultSite?.trim() ? { defaultSite: def.defaultSite.trim() } : {}),
        ...(tls ? { tls } : {}),
        strict: def.strict !== false,
        relaxed: list(def.relaxed),
        credentials: registryCheck(registry),
        stateFile: def.stateFile?.trim() || join(userDir, `evtwin-ocpp-${this.id}.json`),
        heartbeat: {
          intervalS: num(def.heartbeatS, 60, 'heartbeat interval', 1),
          missed: num(def.missedHeartbeats, 3, 'missed heartbeats', 1),
        },
        idTags: { accepted: list(def.acceptedTags), blocked: list(def.blockedTags) },
        callTimeoutMs: num(def.callTimeoutS, 30, 'call timeout', 0.1) * 1000,
        maxQueue: Math.max(1, Math.round(num(def.maxQueue, 16, 'queue size', 1))),
        maxPayloadBytes: Math.round(num(def.maxKiB, 64, 'max frame size', 1) * 1024),
        audit: registry.audit,
        log,
      });
      this.central = central;
      // Revocations (local, from the CLI through the file, or from other instances over MQTT).
      registry.service?.onChange(() => {
        if (!closed) central.recheckCredentials();
      });
      this.ready = central.start().then(
        (p) => this.log(`OCPP central system on ${tls ? 'wss' : 'ws'}://${host}:${p}`),
        (err: unknown) => {
          this.configError = `cannot listen on ${host}:${port}: ${asError(err).message}`;
          this.error(this.configError);
        },
      );
    } catch (err) {
      this.configError = asError(err).message;
      this.error(`configuration: ${this.configError}`);
    }
    this.on('close', (_removed: boolean, done: () => void) => {
      closed = true;
      const central = this.central;
      this.central = undefined;
      void (async () => {
        await this.ready?.catch(() => undefined);
        await central?.close().catch((err: unknown) => this.warn(`close: ${asError(err).message}`));
      })().then(done);
    });
  }
  RED.nodes.registerType<OcppConfigNode, OcppConfigDef, unknown, OcppCredentials>(
    'evtwin-ocpp',
    EvtwinOcppNode,
    {
      credentials: { tlsCert: { type: 'text' }, tlsKey: { type: 'password' } },
    },
  );
};
