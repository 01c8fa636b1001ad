/**
 * evtwin-charger: the charge points of one evtwin-ocpp central system (optionally a subset: sites or
 * charge points) as a flow node. Output 1: canonical charger events (and plan/freeze summaries);
 * output 2: command results; output 3: `charger` and `sessions` points for evtwin-influx-out;
 * output 4: commands to MQTT chargers (`evtwin/v1/{site}/{cp}/cmd`, for an `mqtt out`).
 * Input: commands (`{command, cp, ...}`), the site policies: `site-limit` (W, load management),
 * `temperature` (°C, freeze protection with hysteresis, persisted), `maintenance` ({cp, on}); and
 * MQTT chargers' canonical readings (after evtwin-ingest) and `.../status` messages (core/ocpp/mqtt.ts).
 * The policies are pure functions in core/ocpp/planning.ts; this adapter sends what they decide.
 */
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow } from 'node-red';
import { isReading } from '../../core/reading';
import {
  chargePointStatus,
  chargerPoints,
  checkFreezePolicy,
  freezeCommands,
  freezeDecision,
  parseCommand,
  parseScope,
  parseStatusTopic,
  plannedSessions,
  planChanges,
  planSiteLoad,
  type CentralState,
  type ChargerCommand,
  type ChargerEvent,
  type FreezePolicy,
  type FreezeState,
} from '../../core/ocpp';
import type { CommandResult, MqttPublish } from '../../runtime/ocppServer';
import type { OcppConfigNode } from '../evtwin-ocpp/config';
import { StatusReporter, asError } from '../shared/status';

interface ChargerNodeDef extends NodeDef {
  ocpp: string;
  /** Comma-separated scope: `site`, `site/*` or `site/cp`; empty: every charge point. */
  scope: string;
  siteLimitW: string;
  minW: string;
  haltBelowC: string;
  resumeAtC: string;
  timeoutS: string;
}

function num(v: string | undefined, fallback: number, what: string): number {
  if (v === undefined || String(v).trim() === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${what} must be a number, got "${v}"`);
  return n;
}

export = function register(RED: NodeAPI): void {
  function EvtwinChargerNode(this: Node, def: ChargerNodeDef): void {
    RED.nodes.createNode(this, def);
    const config = RED.nodes.getNode(def.ocpp) as OcppConfigNode | null;
    const scope = parseScope(def.scope);
    const inScope = scope.has;
    let configError: string | undefined;
    let limitW = 0;
    let minW = 1380;
    let freeze: FreezePolicy = { haltBelowC: 0, resumeAtC: 2 };
    let timeoutMs = 30_000;
    try {
      if (!config) throw new Error('no evtwin-ocpp central system selected');
      limitW = num(def.siteLimitW, 0, 'site limit');
      minW = num(def.minW, 1380, 'minimum power');
      freeze = checkFreezePolicy({
        haltBelowC: num(def.haltBelowC, 0, 'halt temperature'),
        resumeAtC: num(def.resumeAtC, 2, 'resume temperature'),
      });
      timeoutMs = num(def.timeoutS, 30, 'command timeout') * 1000;
    } catch (err) {
      configError = asError(err).message;
      this.error(`configuration: ${configError}`);
    }
    // Persisted with the central state: a restart while frozen stays frozen until it warms up.
    const freezeKey = scope.key;
    let freezeState: FreezeState = config?.central?.freezeOf(freezeKey)?.state ?? 'normal';
    let lastPlan = new Map<string, number>();
    let replanTimer: NodeJS.Timeout | undefined;
    const actor = `node:${this.id}`;

    const central = () => {
      const c = config?.central;
      if (!c) throw new Error(config?.configError ?? configError ?? 'central system not running');
      return c;
    };

    const status = new StatusReporter(this, () => {
      const why = configError ?? config?.configError;
      if (why) return { fill: 'red', shape: 'ring', text: why.slice(0, 60) };
      const c = config?.central;
      if (!c) return { fill: 'grey', shape: 'ring', text: 'starting' };
      const s = c.state();
      const mine = Object.values(s.chargePoints).filter((r) => inScope(r.id));
      const online = mine.filter((r) => r.online).length;
      const charging = mine.filter((r) => chargePointStatus(r) === 'charging').length;
      const text = `${online}/${mine.length} online · ${charging} charging${freezeState === 'frozen' ? ' · FROZEN' : ''}`;
      return { fill: freezeState === 'frozen' ? 'blue' : 'green', shape: 'dot', text };
    });
    status.refresh();

    const publish: MqttPublish = (topic, payload) => this.send([null, null, null, { topic, payload }]);
    const run = async (cmd: ChargerCommand, who = actor): Promise<CommandResult> =>
      central().command(cmd, { actor: who, timeoutMs, publish });

    /** Re-plan the site limit over the open sessions in scope; send profiles that changed. */
    const planOnce = async (): Promise<void> => {
      const c = config?.central;
      const limit = limitW;
      if (!c || limit <= 0 || freezeState === 'frozen') return;
      const sessions = plannedSessions(c.state(), c.reachableIds(), inScope);
      const plan = planSiteLoad(limit, sessions, { minW });
      const { next, lower, raise } = planChanges(lastPlan, plan.allocations);
      lastPlan = next;
      const results = [
        ...(await Promise.allSettled(lower.map((cmd) => run(cmd)))),
        ...(await Promise.allSettled(raise.map((cmd) => run(cmd)))),
      ];
      const failed = results.filter((r) => r.status === 'rejected').length;
      this.send([
        {
          topic: 'charger/plan',
          payload: {
            limitW: limit,
            totalW: plan.totalW,
            paused: plan.paused,
            allocations: plan.allocations,
            sent: lower.length + raise.length,
            failed,
          },
        },
        null,
        null,
      ]);
    };
    // One plan at a time: an older plan's raises must never land after a newer plan's cuts.
    let planning: Promise<void> = Promise.resolve();
    const replan = (): Promise<void> => {
      planning = planning.then(planOnce, planOnce);
      return planning;
    };
    const scheduleReplan = (): void => {
      if (replanTimer || limitW <= 0) return;
      replanTimer = setTimeout(() => {
        replanTimer = undefined;
        replan().catch((err: unknown) => this.warn(`load plan: ${asError(err).message}`));
      }, 50);
    };

    const onEvent = (ev: ChargerEvent, state: CentralState): void => {
      if (!inScope(ev.cp)) return;
      const points = chargerPoints(ev, state);
      const rec = state.chargePoints[ev.cp];
      const out: NodeMessage = {
        topic: `charger/${ev.type}`,
        payload: ev,
        ...(rec
          ? { charger: { status: chargePointStatus(rec), online: rec.online, maintenance: rec.maintenance } }
          : {}),
      };
      this.send([out, null, points.length > 0 ? { topic: 'charger/points', payload: points } : null]);
      if (ev.type === 'transaction-started' || ev.type === 'transaction-ended' || ev.type === 'disconnected')
        scheduleReplan();
      // Under load management a new session starts at 0 W (default profile) until the plan gives it a
      // share: sessions never start at full power on top of the others.
      if (ev.type === 'connected' && limitW > 0)
        run({ command: 'profile', cp: ev.cp, connectorId: 0, limitW: 0, purpose: 'TxDefaultProfile' }).catch(
          (err: unknown) => this.warn(`default profile for ${ev.cp}: ${asError(err).message}`),
        );
      // Frozen (also across a restart): whoever (re)connects is held Inoperative until it warms up.
      if (ev.type === 'connected' && freezeState === 'frozen')
        run({ command: 'availability', cp: ev.cp, operative: false }, 'freeze-protection').catch(
          (err: unknown) => this.warn(`freeze hold for ${ev.cp}: ${asError(err).message}`),
        );
      status.refresh();
    };
    // The config node creates its central system synchronously, before this node starts.
    const subscribed = config?.central;
    subscribed?.on('event', onEvent);

    /** Freeze protection: halt = stop sessions + Inoperative; resume = Operative (not in maintenance). */
    const applyFreeze = async (to: FreezeState, temperatureC: number) => {
      const c = central();
      c.setFreeze(freezeKey, { state: to, since: Date.now(), temperatureC });
      const cps = c.reachableIds().filter(inScope);
      const cmds = freezeCommands(c.state(), cps, to);
      const settled = await Promise.allSettled(cmds.map((cmd) => run(cmd, 'freeze-protection')));
      const failed = settled.flatMap((r) => (r.status === 'rejected' ? [asError(r.reason).message] : []));
      const results = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      return { state: to, temperatureC, chargePoints: cps, results, failed };
    };

    this.on('input', (msg: NodeMessageInFlow, send, done) => {
      void (async () => {
        if (configError) throw new Error(configError);
        const topic = typeof msg.topic === 'string' ? msg.topic : '';
        // MQTT chargers: the same state machine as OCPP, events come out through onEvent.
        if (isReading(msg.payload)) {
          // Readings of other kinds share the telemetry topics: not ours, not an error.
          const r = msg.payload;
          if (r.kind === 'charger' && inScope(`${r.site}/${r.asset}`)) central().mqttReading(r);
          return;
        }
        const statusOf = parseStatusTopic(topic);
        if (statusOf) {
          if (inScope(`${statusOf.site}/${statusOf.asset}`))
            central().mqttStatus(statusOf.site, statusOf.asset, msg.payload);
          return;
        }
        if (topic === 'temperature') {
          const t = typeof msg.payload === 'number' ? msg.payload : Number(msg.payload);
          if (!Number.isFinite(t))
            throw new Error(`temperature must be a number of °C, got ${JSON.stringify(msg.payload)}`);
          const d = freezeDecision(freezeState, t, freeze);
          if (!d.changed) return;
          freezeState = d.state;
          status.refresh();
          const summary = await applyFreeze(d.state, t);
          send([{ topic: 'charger/freeze', payload: summary }, null, null]);
          if (d.state === 'normal') scheduleReplan();
          return;
        }
        if (topic === 'site-limit') {
          const w = Number(msg.payload);
          if (!Number.isFinite(w) || w < 0)
            throw new Error(`site limit must be a number of W >= 0, got ${JSON.stringify(msg.payload)}`);
          limitW = w;
          lastPlan = new Map();
          await replan();
          return;
        }
        if (topic === 'maintenance') {
          const p = msg.payload as { cp?: unknown; on?: unknown } | undefined;
          if (typeof p?.cp !== 'string' || typeof p.on !== 'boolean')
            throw new Error('maintenance needs payload {cp: "<site>/<cp>", on: true|false}');
          if (!inScope(p.cp)) throw new Error(`${p.cp} is not in this node's scope`);
          central().setMaintenance(p.cp, p.on, actor);
          const r = await run({ command: 'availability', cp: p.cp, operative: !p.on });
          send([null, { ...msg, payload: r }, null]);
          return;
        }
        const cmd = parseCommand(msg.payload, typeof msg.cp === 'string' ? msg.cp : undefined);
        if (!inScope(cmd.cp)) throw new Error(`${cmd.cp} is not in this node's scope`);
        // A user named by the flow (msg.actor) or by evtwin-api (msg.evtwinCommand.requestedBy).
        const api = msg.evtwinCommand as { requestedBy?: unknown } | undefined;
        const user = typeof msg.actor === 'string' ? msg.actor : api?.requestedBy;
        const who = typeof user === 'string' && user !== '' ? `${user} via ${actor}` : actor;
        const r = await run(cmd, who);
        send([null, { ...msg, payload: r }, null]);
      })().then(
        () => done(),
        (err: unknown) => done(asError(err)),
      );
    });

    this.on('close', () => {
      if (replanTimer) clearTimeout(replanTimer);
      subscribed?.off('event', onEvent);
      status.close();
    });
  }
  RED.nodes.registerType('evtwin-charger', EvtwinChargerNode);
};
