/**
 * evtwin-api: the twin API (`/evtwin/api/v1`, contract core/api.ts) on Node-RED's HTTP-in server.
 * Handlers live in runtime/twinApi.ts; this adapter reads the config, opens the grievance store, builds
 * the query function over the evtwin-influx connection and the JWT check, and sends charger commands
 * (output 1) and Grafana alerts (output 2) into the flow.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Node, NodeAPI, NodeDef, NodeMessage } from 'node-red';
import { TWIN_API_BASE, type IntakeAlert } from '../../core/api';
import { parseAssetModel, type AssetModel } from '../../core/assetModel';
import type { AuditSink } from '../../core/auditEvent';
import { alertsTopic } from '../../core/topics';
import { createAuthenticator, type AuthContext, type HttpRequest } from '../../runtime/authRoutes';
import { GrievanceStore } from '../../runtime/grievances';
import { createInfluxQuery } from '../../runtime/influxQuery';
import { createTwinApi, type CommandOut, type TwinApiHandler } from '../../runtime/twinApi';
import { UserTokens } from '../../runtime/userTokens';
import type { InfluxConfigNode } from '../evtwin-influx/config';
import type { RegistryConfigNode } from '../evtwin-registry/config';
import { UsersFile } from '../evtwin-registry/hub';
import { StatusReporter, asError } from '../shared/status';

interface ApiDef extends NodeDef {
  influx: string;
  assetsFile: string;
  usersFile: string;
  registry: string;
  grievancesFile: string;
}
interface ApiCredentials {
  /** What the Grafana datasource sends (secureJsonData); with X-Grafana-User it names the user. */
  serviceToken?: string;
  /** HS256 key of user access tokens when no registry node is chosen; else env EVTWIN_JWT_SECRET. */
  jwtSecret?: string;
}
type ApiNode = Node<ApiCredentials>;

/** The asset model file, re-read when it changes (the last good model is kept on a mistake). */
class ModelFile {
  private mtimeMs = -1;
  private model: AssetModel;
  constructor(
    private readonly file: string,
    private readonly warn: (t: string) => void,
  ) {
    this.model = this.read();
  }
  private read(): AssetModel {
    this.mtimeMs = statSync(this.file).mtimeMs;
    return parseAssetModel(readFileSync(this.file, 'utf8'), this.file);
  }
  get(): AssetModel {
    try {
      if (statSync(this.file).mtimeMs !== this.mtimeMs) this.model = this.read();
    } catch (err) {
      this.warn(`assets file not reloaded: ${asError(err).message}`);
    }
    return this.model;
  }
}

function packageVersion(): string {
  try {
    return (
      JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
  } catch {
    return '0';
  }
}

/** The live API per runtime; the one middleware mounted on RED.httpNode hands requests to it. */
const live: { node: ApiNode; handler: TwinApiHandler }[] = [];
const mounted = new WeakSet<object>();
type Middleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

export = function register(RED: NodeAPI): void {
  const app = RED.httpNode as unknown as { use?: (h: Middleware) => unknown } | undefined;
  if (app && typeof app.use === 'function' && !mounted.has(app)) {
    mounted.add(app);
    app.use((req, res, next) => {
      const current = live[live.length - 1];
      if (!current) return next();
      current.handler(req as HttpRequest, res, next);
    });
  }

  function EvtwinApiNode(this: ApiNode, def: ApiDef): void {
    RED.nodes.createNode(this, def);

    const creds: ApiCredentials = this.credentials ?? {};
    let requests = 0;
    let failed = 0;
    let grievances: GrievanceStore | undefined;
    let entry: { node: ApiNode; handler: TwinApiHandler } | undefined;
    const status = new StatusReporter(this, () => ({
      fill: 'green',
      shape: 'dot',
      text: `${TWIN_API_BASE} · ${requests} req${failed ? ` · ${failed} failed` : ''}`,
    }));
    const fail = (message: string): void => {
      this.error(`configuration: ${message}`);
      status.set({ fill: 'red', shape: 'ring', text: message.slice(0, 60) });
    };

    const start = async (): Promise<void> => {
      const influx = RED.nodes.getNode(def.influx) as InfluxConfigNode | null;
      if (!influx?.connection)
        throw new Error(`choose an evtwin-influx connection (${influx?.configError ?? 'none'})`);
      if (!def.assetsFile?.trim()) throw new Error('set the assets file (assets.yaml)');
      if (!def.usersFile?.trim()) throw new Error('set the users file (users.yaml)');
      const model = new ModelFile(def.assetsFile.trim(), (t) => this.warn(t));
      const users = new UsersFile(def.usersFile.trim(), (level, text) =>
        level === 'info' ? this.log(text) : level === 'warn' ? this.warn(text) : this.error(text),
      );
      const registry = def.registry ? (RED.nodes.getNode(def.registry) as RegistryConfigNode | null) : null;
      const audit: AuditSink | undefined = registry?.audit;
      // A registry exposing its authenticator shares its sessions (revocations included); else verify
      // JWTs here with the same secret (no session store: a revoked session's token lives until it expires).
      const shared = (
        registry as { authenticator?: { authenticate(req: HttpRequest): Promise<AuthContext> } } | null
      )?.authenticator;
      let authenticate: ((req: HttpRequest) => Promise<AuthContext>) | undefined = shared
        ? (req) => shared.authenticate(req)
        : undefined;
      const secret = creds.jwtSecret || process.env.EVTWIN_JWT_SECRET;
      if (!authenticate && secret) {
        const tokens = await UserTokens.open({ secret });
        const auth = createAuthenticator({
          tokens,
          findUser: (login) => users.find(login),
          audit: audit ?? { record: () => undefined },
        });
        authenticate = (req) => auth.authenticate(req);
      }
      if (!authenticate && !creds.serviceToken)
        throw new Error(
          'no way to authenticate: set the service token, or a JWT secret (credential or EVTWIN_JWT_SECRET)',
        );
      grievances = await GrievanceStore.open(
        def.grievancesFile?.trim() || join(RED.settings.userDir ?? '.', 'evtwin-grievances.json'),
      );
      const handler = createTwinApi({
        query: createInfluxQuery(influx.connection),
        model: () => model.get(),
        findUser: (login) => users.find(login),
        ...(authenticate ? { authenticate } : {}),
        ...(creds.serviceToken ? { serviceToken: creds.serviceToken } : {}),
        grievances,
        ...(audit ? { audit } : {}),
        version: packageVersion(),
        log: (level, text) => (level === 'warn' ? this.warn(text) : this.error(text)),
        emitCommand: (out: CommandOut) =>
          this.send([
            {
              topic: out.topic,
              payload: out.payload,
              commandId: out.command.commandId,
              evtwinCommand: out.command,
            } as NodeMessage,
            null,
          ]),
        emitAlerts: (alerts: IntakeAlert[]) =>
          this.send([
            null,
            alerts.map(
              (a) =>
                ({ topic: a.site ? alertsTopic(a.site) : 'evtwin/v1/alerts', payload: a }) as NodeMessage,
            ),
          ]),
      });
      entry = {
        node: this,
        handler: (req, res, next) => {
          requests++;
          res.once('finish', () => {
            if (res.statusCode >= 500) failed++;
          });
          handler(req, res, next);
        },
      };
      live.push(entry);
      status.refresh();
    };
    const ready = start().catch((err: unknown) => fail(asError(err).message));

    this.on('close', (_removed: boolean, done: () => void) => {
      void ready.then(async () => {
        const i = entry ? live.indexOf(entry) : -1;
        if (i >= 0) live.splice(i, 1);
        status.close();
        await grievances?.close().catch(() => undefined);
        done();
      });
    });
  }

  RED.nodes.registerType<ApiNode, ApiDef, unknown, ApiCredentials>('evtwin-api', EvtwinApiNode, {
    credentials: { serviceToken: { type: 'password' }, jwtSecret: { type: 'password' } },
  });
};
