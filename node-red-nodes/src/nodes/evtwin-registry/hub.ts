/**
 * The security services an evtwin-registry config node opens for its Node-RED instance: the one audit
 * log (runtime/auditLog.ts), and with a users file, the user session store (runtime/userTokens.ts) and
 * the login routes (runtime/authRoutes.ts) on RED.httpNode. No Node-RED import: the adapter wires it.
 */
import { readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { indexUsers, parseUsers, type User } from '../../core/assetModel';
import type { AuditEvent, AuditSink } from '../../core/auditEvent';
import { AuditLog, type PointWriter } from '../../runtime/auditLog';
import {
  registerAuthRoutes,
  type Authenticator,
  type HttpHandler,
  type HttpRequest,
  type RouteTarget,
} from '../../runtime/authRoutes';
import { UserTokens } from '../../runtime/userTokens';

type Log = (level: 'info' | 'warn' | 'error', text: string) => void;

/**
 * The node's audit sink from the first moment: events recorded before the log file is open (the registry
 * service starts at once) wait in order and are written when it opens.
 */
export class DeferredAudit implements AuditSink {
  private log: AuditLog | undefined;
  private pending: AuditEvent[] = [];
  private closed = false;

  constructor(private readonly onDrop: (ev: AuditEvent) => void) {}

  record(ev: AuditEvent): void {
    if (this.log) this.log.record(ev);
    else if (!this.closed) this.pending.push(ev);
    else this.onDrop(ev);
  }

  attach(log: AuditLog): void {
    this.log = log;
    for (const ev of this.pending) log.record(ev);
    this.pending = [];
  }

  async close(): Promise<void> {
    // Auth nodes stopping in the same deploy flush their rejection summaries on close: let them first.
    await new Promise((r) => setImmediate(r));
    this.closed = true;
    const log = this.log;
    this.log = undefined;
    if (log) await log.close();
  }
}

/** users.yaml, re-read when it changes (a removed user or changed role takes effect at once). */
export class UsersFile {
  private mtimeMs = -1;
  private users: ReadonlyMap<string, User> = new Map();

  constructor(
    readonly file: string,
    private readonly log: Log,
  ) {
    this.refresh(true);
  }

  find(login: string): User | undefined {
    this.refresh(false);
    return this.users.get(login);
  }

  private refresh(first: boolean): void {
    let mtimeMs: number;
    try {
      mtimeMs = statSync(this.file).mtimeMs;
    } catch (err) {
      if (first) throw new Error(`users file ${this.file}: ${(err as Error).message}`);
      return;
    }
    if (mtimeMs === this.mtimeMs) return;
    this.mtimeMs = mtimeMs;
    try {
      this.users = indexUsers(parseUsers(readFileSync(this.file, 'utf8'), this.file));
    } catch (err) {
      if (first) throw err;
      // Keep the last good users rather than locking everyone out over a typo.
      this.log('warn', `users file not reloaded: ${(err as Error).message}`);
    }
  }
}

/** Routes collected per registry node, served by one dispatcher (express cannot unmount routes on redeploy). */
export class RouteSet implements RouteTarget {
  private readonly routes: { method: string; path: string; handler: HttpHandler }[] = [];
  get(path: string, handler: HttpHandler): void {
    this.routes.push({ method: 'GET', path, handler });
  }
  post(path: string, handler: HttpHandler): void {
    this.routes.push({ method: 'POST', path, handler });
  }
  find(method: string | undefined, path: string): HttpHandler | undefined {
    return this.routes.find((r) => r.method === method && r.path === path)?.handler;
  }
}

const liveRouteSets = new Map<string, RouteSet>();
const dispatching = new WeakSet<object>();

type Middleware = (req: IncomingMessage & { path?: string }, res: ServerResponse, next: () => void) => void;

/** Mount, once per app, the middleware that hands requests to the live registry nodes' routes. */
export function mountDispatcher(app: { use(handler: Middleware): unknown }): void {
  if (dispatching.has(app)) return;
  dispatching.add(app);
  app.use((req, res, next) => {
    const path = req.path ?? (req.url ?? '').split('?')[0] ?? '';
    for (const set of liveRouteSets.values()) {
      const handler = set.find(req.method, path);
      if (handler) return handler(req as HttpRequest, res, next);
    }
    next();
  });
}

export interface HubOptions {
  /** Registry node id: its routes are served while the hub is open. */
  id: string;
  registryFile: string;
  auditFile: string;
  usersFile?: string;
  jwtSecret?: string;
  mirror?: PointWriter;
  audit: DeferredAudit;
  log: Log;
}

export interface Hub {
  auditLog: AuditLog;
  /** Present with a users file: checks user access JWTs. */
  authenticator?: Authenticator;
  tokens?: UserTokens;
  close(): Promise<void>;
}

/** Check the secret before anything opens: a users file needs one, of at least 32 bytes. */
export function checkJwtSecret(usersFile: string | undefined, secret: string | undefined): void {
  if (!usersFile) return;
  if (!secret)
    throw new Error('a users file needs a JWT secret: set the credential or env EVTWIN_JWT_SECRET');
  if (Buffer.byteLength(secret) < 32) throw new Error('the JWT secret must be at least 32 bytes');
}

export async function openHub(o: HubOptions): Promise<Hub> {
  checkJwtSecret(o.usersFile, o.jwtSecret);
  const users = o.usersFile ? new UsersFile(o.usersFile, o.log) : undefined;
  const auditLog = await AuditLog.open({ file: o.auditFile, ...(o.mirror ? { mirror: o.mirror } : {}) });
  auditLog.on('error', (err) => o.log('error', `audit log: ${err.message}`));
  o.audit.attach(auditLog);
  if (!users || !o.jwtSecret) return { auditLog, close: () => o.audit.close() };
  let tokens: UserTokens;
  try {
    tokens = await UserTokens.open({
      secret: o.jwtSecret,
      storeFile: `${o.registryFile}.sessions.json`,
      audit: o.audit,
    });
  } catch (err) {
    await o.audit.close();
    throw err;
  }
  const routes = new RouteSet();
  const authenticator = registerAuthRoutes(routes, {
    tokens,
    audit: o.audit,
    findUser: (login) => users.find(login),
  });
  liveRouteSets.set(o.id, routes);
  return {
    auditLog,
    authenticator,
    tokens,
    async close() {
      if (liveRouteSets.get(o.id) === routes) liveRouteSets.delete(o.id);
      await tokens.close().catch((err: unknown) => o.log('warn', `sessions: ${(err as Error).message}`));
      await o.audit.close();
    },
  };
}
