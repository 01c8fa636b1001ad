/**
 * Scale-out: per-device state (a scorer's models) must live in exactly one Node-RED instance, but an
 * MQTT shared subscription hands each message to any member of the group. So stage 1 (shared
 * subscription, stateless: auth, ingest, write telemetry) republishes each canonical reading to a
 * shard topic, and stage 2 instance k subscribes only shard k. The shard of a device is a pure,
 * stable function of its id: every instance computes the same one, across restarts and versions.
 */
import { ID_PATTERN, type Reading } from './reading';
import { TOPIC_ROOT } from './topics';

/** Internal topics: only Node-RED's own broker user may publish here (never devices). */
export const SHARD_TOPIC_ROOT = `${TOPIC_ROOT}/_shard`;
export const MAX_SHARDS = 1024;

/** FNV-1a, 32 bit, over the UTF-8 bytes of `site/asset`: stable, fast, spreads short ids well. */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function checkShardCount(shards: number): void {
  if (!Number.isSafeInteger(shards) || shards < 1 || shards > MAX_SHARDS)
    throw new RangeError(`the number of shards must be an integer from 1 to ${MAX_SHARDS}, got ${shards}`);
}

/** The shard (0 … shards-1) that owns `site/asset`. */
export function shardOf(site: string, asset: string, shards: number): number {
  checkShardCount(shards);
  return fnv1a32(`${site}/${asset}`) % shards;
}

const topicOf = (shard: number, site: string, asset: string): string =>
  `${SHARD_TOPIC_ROOT}/${shard}/${site}/${asset}`;

/** Where stage 1 republishes a reading of `site/asset`: `evtwin/v1/_shard/{k}/{site}/{asset}`. */
export function shardTopic(site: string, asset: string, shards: number): string {
  return topicOf(shardOf(site, asset, shards), site, asset);
}

/** What stage 2 instance k subscribes to. */
export function shardSubscription(k: number): string {
  return `${SHARD_TOPIC_ROOT}/${k}/+/+`;
}

/** A reading's shard message, or why it cannot be routed (ids that could break a topic level). */
export function routeReading(
  reading: Reading,
  shards: number,
): { ok: true; topic: string; shard: number } | { ok: false; reason: string } {
  if (!ID_PATTERN.test(reading.site) || !ID_PATTERN.test(reading.asset))
    return {
      ok: false,
      reason: `site/asset ${JSON.stringify(`${reading.site}/${reading.asset}`)} is not a plain id`,
    };
  const shard = shardOf(reading.site, reading.asset, shards);
  return { ok: true, shard, topic: topicOf(shard, reading.site, reading.asset) };
}
