/** What the evtwin-influx config node offers its out nodes (types only, shared by both adapters). */
import type { Node, NodeDef } from 'node-red';
import type { InfluxWriter } from '../../runtime';

export interface InfluxConfigDef extends NodeDef {
  url: string;
  database: string;
  retentionPolicy: string;
  batchSize: string;
  flushMs: string;
  /** Absent in flows made before the option: those keep the timed flush. */
  flushWhenFree?: boolean;
  spoolMaxMB: string;
  spoolDir: string;
  gzip: boolean;
  createDatabase: boolean;
}

export interface InfluxCredentials {
  username?: string;
  password?: string;
}

/** What out nodes find with RED.nodes.getNode(): the shared writer, or why there is none. */
export interface InfluxConfigNode extends Node<InfluxCredentials> {
  writer?: InfluxWriter;
  /** The resolved connection, for readers (evtwin-api's queries); credentials stay on the node. */
  connection?: { url: string; database: string; username?: string; password?: string };
  configError?: string;
}
