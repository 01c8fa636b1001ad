/**
 * evtwin-registry: the device and charge-point registry (config node) and its admin HTTP API on
 * RED.httpAdmin under /evtwin/api/v1/registry. The registry logic is core/registry.ts, the file
 * runtime/registryStore.ts, the sharing between instances runtime/registrySync.ts.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Express, NextFunction, Request, Response } from 'express';
import type { NodeAPI } from 'node-red';
import QRCode from 'qrcode';
import {
  RegistryError,
  entryId,
  publicEntry,
  register as registerEntry,
  rename,
  revoke,
  rotateKey,
  rotateToken,
} from '../../core/registry';
import type { PointWriter } from '../../runtime/auditLog';
import type { Authenticator } from '../../runtime/authRoutes';
import { RegistryService } from '../../runtime/registrySync';
import type { InfluxConfigNode } from '../evtwin-influx/config';
import { asError } from '../shared/status';
import {
  adminAuthorizers,
  type Authorize,
  type RegistryConfigDef,
  type RegistryConfigNode,
  type RegistryCredentials,
} from './config';
import { DeferredAudit, checkJwtSecret, mountDispatcher, openHub, type Hub } from './hub';

const API_ROOT = '/evtwin/api/v1/registry';

const sha = (s: string): Buffer => createHash('sha256').update(s).digest();

/** The registry's own admin token (a Node-RED credential), compared in constant time. */
const adminTokenAuthorize: Authorize = async (req, registry) => {
  const expected = registry.credentials?.adminToken;
  const header = req.headers.authorization;
  if (!expected || typeof header !== 'string' || !header.startsWith('Bearer ')) return undefined;
  return timingSafeEqual(sha(header.slice(7)), sha(expected))
    ? { login: 'admin-token', role: 'admin' }
    : undefined;
};

adminAuthorizers.unshift(adminTokenAuthorize);

const nonNegative = (v: string | undefined, fallback: number, what: string): number => {
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${what} must be a non-negative number, got "${v}"`);
  return n;
};

function checkBroker(v: string): string {
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw new Error(`broker URL "${v}" is not a URL`);
  }
  if (!['mqtt:', 'mqtts:', 'ws:', 'wss:'].includes(url.protocol))
    throw new Error(`broker URL "${v}" must be mqtt://, mqtts://, ws:// or wss://`);
  return v;
}

/** Live registry nodes of this runtime, by id; the HTTP routes (registered once) look them up here. */
const live = new Map<string, RegistryConfigNode>();
const routed = new WeakSet<Express>();

function pick(req: Request): RegistryConfigNode | string {
  const wanted = typeof req.query.registry === 'string' ? req.query.registry : undefined;
  const all = [...live.values()];
  if (wanted) return all.find((n) => n.id === wanted || n.name === wanted) ?? `no registry "${wanted}"`;
  if (all.length === 1 && all[0]) return all[0];
  return all.length === 0
    ? 'no evtwin-registry node is deployed'
    : 'several registries: add ?registry=<id or name>';
}

const statusOf = (err: unknown): number => {
  if (err instanceof RegistryError)
    return err.code === 'not-found' ? 404 : err.code === 'conflict' ? 409 : 400;
  return 500;
};

async function qr(token: string): Promise<string> {
  return QRCode.toDataURL(token, { errorCorrectionLevel: 'M', margin: 2 });
}

function routes(RED: NodeAPI): void {
  const app = RED.httpAdmin;
  if (routed.has(app)) return;
  routed.add(app);

  type Handler = (
    node: RegistryConfigNode,
    service: RegistryService,
    actor: string,
    req: Request,
  ) => Promise<{ status?: number; body: unknown }>;
  const wrap =
    (handler: Handler) =>
    (req: Request, res: Response, _next: NextFunction): void => {
      void (async () => {
        const node = pick(req);
        if (typeof node === 'string') return void res.status(404).json({ error: node });
        let who: { login: string; role: string } | undefined;
        for (const a of adminAuthorizers) {
          who = await a(req, node);
          if (who) break;
        }
        if (!who) return void res.status(401).json({ error: 'an admin bearer token is required' });
        if (who.role !== 'admin') {
          node.audit.record({
            ts: Date.now(),
            actor: who.login,
            action: 'access.denied',
            target: `${req.method} ${req.path}`,
            outcome: 'denied',
            detail: { role: who.role, needs: 'admin' },
          });
          return void res.status(403).json({ error: 'role admin is required' });
        }
        if (!node.service)
          return void res.status(503).json({ error: node.configError ?? 'registry not started' });
        const out = await handler(node, node.service, who.login, req);
        res.status(out.status ?? 200).json(out.body);
      })().catch((err: unknown) => {
        const status = statusOf(err);
        if (status === 500) RED.log.error(`evtwin-registry API: ${asError(err).message}`);
        res.status(status).json({ error: asError(err).message });
      });
    };
  const idOf = (req: Request): string => entryId(String(req.params.site), String(req.params.asset));
  const body = (req: Request): Record<string, unknown> => {
    const b: unknown = req.body;
    if (typeof b !== 'object' || b === null || Array.isArray(b))
      throw new RegistryError('bad-request', 'body must be a JSON object');
    return b as Record<string, unknown>;
  };
  const ctx = (actor: string) => ({ now: Date.now(), actor });

  app.get(
    `${API_ROOT}/devices`,
    wrap(async (_node, service) => ({ body: (service.index()?.state.entries ?? []).map(publicEntry) })),
  );
  app.post(
    `${API_ROOT}/devices`,
    wrap(async (node, service, actor, req) => {
      const b = body(req);
      const r = service.change((s) => registerEntry(s, b, ctx(actor)));
      return {
        status: 201,
        body: {
          device: publicEntry(r.entry),
          token: r.token,
          qr: await qr(r.token),
          ...(r.key ? { key: r.key } : {}),
        },
      };
    }),
  );
  app.patch(
    `${API_ROOT}/devices/:site/:asset`,
    wrap(async (node, service, actor, req) => {
      const b = body(req);
      const r = service.change((s) => rename(s, idOf(req), b.name, ctx(actor)));
      return { body: { device: publicEntry(r.entry) } };
    }),
  );
  app.post(
    `${API_ROOT}/devices/:site/:asset/rotate`,
    wrap(async (node, service, actor, req) => {
      const r = service.change((s) => rotateToken(s, idOf(req), ctx(actor)));
      return { body: { device: publicEntry(r.entry), token: r.token, qr: await qr(r.token) } };
    }),
  );
  app.post(
    `${API_ROOT}/devices/:site/:asset/revoke`,
    wrap(async (node, service, actor, req) => {
      const r = service.change((s) => revoke(s, idOf(req), ctx(actor)));
      return { body: { device: publicEntry(r.entry) } };
    }),
  );
  app.post(
    `${API_ROOT}/devices/:site/:asset/rotate-key`,
    wrap(async (node, service, actor, req) => {
      const b: unknown = req.body;
      const graceS = typeof b === 'object' && b !== null ? (b as { graceS?: unknown }).graceS : undefined;
      if (graceS !== undefined && typeof graceS !== 'number')
        throw new RegistryError('bad-request', '"graceS" must be a number of seconds');
      const grace = graceS === undefined ? node.graceMs : graceS * 1000;
      const r = service.change((s) => rotateKey(s, idOf(req), grace, ctx(actor)));
      return { body: { device: publicEntry(r.entry), key: r.key } };
    }),
  );
}

export = function register(RED: NodeAPI): void {
  routes(RED);
  // Login routes of registries with a users file, on the HTTP-in server (mounted once, served per live node).
  const httpNode = RED.httpNode as unknown as { use?: unknown } | undefined;
  if (typeof httpNode?.use === 'function')
    mountDispatcher(RED.httpNode as unknown as Parameters<typeof mountDispatcher>[0]);

  function EvtwinRegistryNode(this: RegistryConfigNode, def: RegistryConfigDef): void {
    RED.nodes.createNode(this, def);
    const userDir = RED.settings.userDir ?? join(homedir(), '.node-red');
    const log = (level: 'info' | 'warn' | 'error', text: string): void =>
      level === 'info' ? this.log(text) : level === 'warn' ? this.warn(text) : this.error(text);
    // The instance's one audit log; events before it opens are queued (registry sync starts at once).
    const audit = new DeferredAudit((ev) => this.warn(`audit log closed, event dropped: ${ev.action}`));
    this.audit = audit;
    this.graceMs = 24 * 3_600_000;
    const creds: RegistryCredentials = this.credentials ?? {};
    const file = def.file?.trim() || join(userDir, 'evtwin-registry.json');
    let hub: Promise<Hub | undefined> = Promise.resolve(undefined);
    let authenticator: Authenticator | undefined;
    // A user access JWT with role admin may use this registry's admin API.
    const jwtAuthorize: Authorize = async (req, registry) => {
      if (registry !== this || !authenticator) return undefined;
      try {
        const who = await authenticator.authenticate(req);
        return { login: who.login, role: who.role };
      } catch {
        return undefined;
      }
    };
    try {
      this.graceMs = nonNegative(def.graceS, 86_400, 'key grace period') * 1000;
      const brokerUrl = def.brokerUrl?.trim() ? checkBroker(def.brokerUrl.trim()) : undefined;
      const usersFile = def.usersFile?.trim() || undefined;
      const jwtSecret = creds.jwtSecret || process.env.EVTWIN_JWT_SECRET || undefined;
      checkJwtSecret(usersFile, jwtSecret);
      const influxId = def.influx?.trim();
      const mirror: PointWriter | undefined = influxId
        ? {
            write: (points, source) => {
              const influx = RED.nodes.getNode(influxId) as InfluxConfigNode | null;
              if (!influx?.writer)
                throw new Error(
                  `audit mirror: evtwin-influx ${influxId} ${influx?.configError ?? 'is not available'}`,
                );
              return influx.writer.write(points, source);
            },
          }
        : undefined;
      hub = openHub({
        id: this.id,
        registryFile: file,
        auditFile: def.auditFile?.trim() || `${file}.audit.jsonl`,
        ...(usersFile ? { usersFile } : {}),
        ...(jwtSecret ? { jwtSecret } : {}),
        ...(mirror ? { mirror } : {}),
        audit,
        log,
      }).then(
        (h) => {
          authenticator = h.authenticator;
          if (authenticator) adminAuthorizers.push(jwtAuthorize);
          return h;
        },
        (err: unknown) => {
          this.configError = asError(err).message;
          this.error(`security: ${this.configError}`);
          return undefined;
        },
      );
      const service = new RegistryService({
        file,
        ...(brokerUrl ? { brokerUrl } : {}),
        ...(creds.mqttUsername ? { mqttUsername: creds.mqttUsername } : {}),
        ...(creds.mqttPassword ? { mqttPassword: creds.mqttPassword } : {}),
        instanceId: `${process.pid}:${this.id}`,
        audit,
        log,
      });
      this.service = service;
      live.set(this.id, this);
      service.start().catch((err: unknown) => {
        this.configError = asError(err).message;
        this.error(`registry sync: ${this.configError}`);
      });
    } catch (err) {
      this.configError = asError(err).message;
      this.error(`configuration: ${this.configError}`);
    }

    this.on('close', (_removed: boolean, done: () => void) => {
      live.delete(this.id);
      const i = adminAuthorizers.indexOf(jwtAuthorize);
      if (i >= 0) adminAuthorizers.splice(i, 1);
      authenticator = undefined;
      void (async () => {
        if (this.service) await this.service.close().catch(() => undefined);
        const h = await hub;
        if (h) await h.close().catch((err: unknown) => this.warn(`close: ${asError(err).message}`));
        else await audit.close().catch(() => undefined);
      })().then(done);
    });
  }
  RED.nodes.registerType<RegistryConfigNode, RegistryConfigDef, unknown, RegistryCredentials>(
    'evtwin-registry',
    EvtwinRegistryNode,
    {
      credentials: {
        adminToken: { type: 'password' },
        mqttUsername: { type: 'text' },
        mqttPassword: { type: 'password' },
        jwtSecret: { type: 'password' },
      },
    },
  );
};
