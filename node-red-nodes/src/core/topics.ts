/**
 * MQTT topic contract: `evtwin/v1/{site}/{asset}/telemetry|status|cmd` and `evtwin/v1/{site}/alerts`,
 * plus topic templates that map other schemes (for example `jjm/sensors/{asset}/data`) in.
 */
import { ID_PATTERN } from './reading';

export const TOPIC_ROOT = 'evtwin/v1';
export const DEFAULT_TELEMETRY_TEMPLATE = `${TOPIC_ROOT}/{site}/{asset}/telemetry`;

export const telemetryTopic = (site: string, asset: string): string =>
  `${TOPIC_ROOT}/${site}/${asset}/telemetry`;
export const statusTopic = (site: string, asset: string): string => `${TOPIC_ROOT}/${site}/${asset}/status`;
export const commandTopic = (site: string, asset: string): string => `${TOPIC_ROOT}/${site}/${asset}/cmd`;
export const alertsTopic = (site: string): string => `${TOPIC_ROOT}/${site}/alerts`;

export const TEMPLATE_FIELDS = ['site', 'line', 'asset', 'kind'] as const;
export type TemplateField = (typeof TEMPLATE_FIELDS)[number];
export type TopicFields = Partial<Record<TemplateField, string>>;

export interface TopicTemplate {
  readonly template: string;
  /** The MQTT subscription that receives every topic the template matches (placeholders become `+`). */
  readonly subscription: string;
  readonly fields: readonly TemplateField[];
  /** The placeholder values of a topic, or undefined when the topic does not fit the template. */
  match(topic: string): TopicFields | undefined;
}

export class TopicTemplateError extends Error {
  override name = 'TopicTemplateError';
}

const PLACEHOLDER = /^\{([a-z]+)\}$/;

export function compileTopicTemplate(template: string): TopicTemplate {
  const trimmed = template.trim();
  if (trimmed === '') throw new TopicTemplateError('topic template is empty');
  const levels = trimmed.split('/');
  const slots: (TemplateField | null)[] = [];
  const fields: TemplateField[] = [];
  for (const level of levels) {
    if (level.includes('+') || level.includes('#')) {
      throw new TopicTemplateError(`topic template "${trimmed}": use {placeholders}, not MQTT wildcards`);
    }
    const m = PLACEHOLDER.exec(level);
    if (m) {
      const name = m[1] as TemplateField;
      if (!TEMPLATE_FIELDS.includes(name)) {
        throw new TopicTemplateError(
          `topic template "${trimmed}": unknown placeholder {${m[1]}} (allowed: ${TEMPLATE_FIELDS.map((f) => `{${f}}`).join(', ')})`,
        );
      }
      if (fields.includes(name))
        throw new TopicTemplateError(`topic template "${trimmed}": {${name}} appears twice`);
      fields.push(name);
      slots.push(name);
    } else {
      if (level.includes('{') || level.includes('}')) {
        throw new TopicTemplateError(
          `topic template "${trimmed}": a placeholder must fill a whole topic level`,
        );
      }
      slots.push(null);
    }
  }
  if (!fields.includes('asset'))
    throw new TopicTemplateError(`topic template "${trimmed}": {asset} is required`);
  const subscription = levels.map((level, i) => (slots[i] ? '+' : level)).join('/');
  return {
    template: trimmed,
    subscription,
    fields,
    match(topic: string): TopicFields | undefined {
      const parts = topic.split('/');
      if (parts.length !== levels.length) return undefined;
      const out: TopicFields = {};
      for (let i = 0; i < parts.length; i++) {
        const slot = slots[i];
        const part = parts[i] as string;
        if (slot) {
          if (!ID_PATTERN.test(part)) return undefined;
          out[slot] = part;
        } else if (part !== levels[i]) {
          return undefined;
        }
      }
      return out;
    },
  };
}
