/** The pure core of EVTwin: contracts and logic with no Node-RED and no I/O. */
export * from './reading';
export * from './topics';
export * from './telemetry';
export * from './kinds';
export * from './assetModel';
export * from './ingest';
export * from './lineProtocol';
export * from './rate';
export * from './auditEvent';
export * from './access';
export * from './audit';
export * from './fernet';
export * from './registry';
export * from './replay';
export * from './authGate';
export * from './mosquittoAuth';
export * from './scoring/rules';
export * from './scoring/health';
export * from './scoring/risk';
export * from './scoring/events';
export * from './scoring/scorer';
export * from './scoring/learned';
export * from './scoring/history';
export * from './scoring/settings';
export { SeededRandom } from './scoring/prng';
export {
  FeatureExtractor,
  METRIC_FEATURES,
  TIME_FEATURES,
  type FeatureExtractorJSON,
} from './scoring/features';
export * from './recommend';
export type {
  AnomalyDetector,
  DetectorContribution,
  DetectorOutput,
  DetectorState,
} from './scoring/detector';
export * from './ocpp';
export * from './api';
export * from './influxql';
export * from './shard';
export * from './ackWindow';
export * from './receipts';
export * from './batch';
