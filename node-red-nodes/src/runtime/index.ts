/** I/O services of EVTwin (no Node-RED import): the InfluxDB writer and its on-disk spool. */
export * from './influxWriter';
export * from './spool';
export * from './passwords';
export * from './userTokens';
export * from './auditLog';
export * from './authRoutes';
export * from './registryStore';
export * from './registrySync';
export * from './modelStore';
export * from './trainWorker';
export * from './ocppServer';
export * from './influxQuery';
export * from './grievances';
export * from './twinApi';
export * from './trainHistory';
export * from './receipts';
export * from './mqttSubscriber';
