/** What the evtwin-registry config node offers auth nodes (types only, shared by both adapters). */
import type { IncomingMessage } from 'node:http';
import type { Node, NodeDef } from 'node-red';
import type { AuditSink } from '../../core/auditEvent';
import type { RegistryService } from '../../runtime/registrySync';

export interface RegistryConfigDef extends NodeDef {
  file: string;
  brokerUrl: string;
  graceS: string;
  /** users.yaml (logins, roles, password hashes); empty: no user login on this instance. */
  usersFile?: string;
  /** Hash-chained audit log; default `<registry file>.audit.jsonl`. */
  auditFile?: string;
  /** evtwin-influx config node id: mirror audit events to measurement `audit`. */
  influx?: string;
}

export interface RegistryCredentials {
  /** Bearer token for the admin HTTP API (besides user JWTs with role admin). */
  adminToken?: string;
  mqttUsername?: string;
  mqttPassword?: string;
  /** HS256 key (>= 32 bytes) for user access tokens; else env EVTWIN_JWT_SECRET. */
  jwtSecret?: string;
}

export interface RegistryConfigNode extends Node<RegistryCredentials> {
  service?: RegistryService;
  /** Grace period of a rotated-out Fernet key, ms. */
  graceMs: number;
  /** The instance's one audit log (events recorded before it opens are queued, then written). */
  audit: AuditSink;
  configError?: string;
}

/**
 * Who is calling the admin API: an identity with a role, or undefined (not authenticated). The
 * registry's own admin token is one; the user-JWT check (runtime/authRoutes.ts createAuthenticator)
 * plugs in by pushing onto `adminAuthorizers`, e.g.
 * `adminAuthorizers.push((req) => authenticator.authenticate(req).catch(() => undefined))`.
 */
export type Authorize = (
  req: IncomingMessage,
  registry: RegistryConfigNode,
) => Promise<{ login: string; role: string } | undefined>;

/** Tried in order; the first identity found decides (role must be admin). */
export const adminAuthorizers: Authorize[] = [];
