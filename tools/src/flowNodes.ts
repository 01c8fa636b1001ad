/**
 * Node-RED core MQTT nodes as the flows built by tools and tests configure them (MQTT v5, raw
 * buffers: evtwin-auth / evtwin-ingest parse and validate the payload themselves).
 */

/** The `mqtt-broker` config node for a local broker (`mqtt://127.0.0.1:port`). */
export function mqttBrokerNode(url: string, id = 'broker'): Record<string, unknown> {
  const u = new URL(url);
  return {
    id,
    type: 'mqtt-broker',
    broker: u.hostname,
    port: u.port,
    clientid: '',
    protocolVersion: '5',
    keepalive: '15',
    cleansession: true,
    autoConnect: true,
  };
}

export interface MqttInOptions {
  id: string;
  topic: string;
  /** Output wires of the node's one output. */
  wires: string[];
  z?: string;
  qos?: '0' | '1' | '2';
  /** Retain as published (keep the retain flag the broker delivered). */
  rap?: boolean;
  broker?: string;
}

/** An `mqtt in` node: the payload as a Buffer, no local echo. */
export function mqttInNode(o: MqttInOptions): Record<string, unknown> {
  return {
    id: o.id,
    type: 'mqtt in',
    ...(o.z ? { z: o.z } : {}),
    topic: o.topic,
    qos: o.qos ?? '1',
    datatype: 'buffer',
    broker: o.broker ?? 'broker',
    nl: false,
    rap: o.rap ?? true,
    rh: 0,
    inputs: 0,
    wires: [o.wires],
  };
}
