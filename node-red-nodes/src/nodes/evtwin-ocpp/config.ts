/** What the evtwin-ocpp config node offers evtwin-charger nodes (types only, shared by both adapters). */
import type { Node, NodeDef } from 'node-red';
import type { AuditSink } from '../../core/auditEvent';
import type { OcppCentralSystem } from '../../runtime/ocppServer';

export interface OcppConfigDef extends NodeDef {
  registry: string;
  host: string;
  port: string;
  pathPrefix: string;
  defaultSite: string;
  tls: boolean;
  strict: boolean;
  /** Comma-separated charge points (`site/cp` or cp) exempt from strict validation. */
  relaxed: string;
  heartbeatS: string;
  missedHeartbeats: string;
  callTimeoutS: string;
  maxQueue: string;
  maxKiB: string;
  stateFile: string;
  acceptedTags: string;
  blockedTags: string;
}

export interface OcppCredentials {
  tlsCert?: string;
  tlsKey?: string;
}

export interface OcppConfigNode extends Node<OcppCredentials> {
  central?: OcppCentralSystem;
  /** Resolves once the port listens (or the start failed: see configError). */
  ready?: Promise<void>;
  /** The registry's audit log, when a registry is selected. */
  audit?: AuditSink;
  configError?: string;
}
