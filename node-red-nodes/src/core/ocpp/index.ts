/** OCPP charge points, pure: canonical events, central state, commands, site policies. */
export * from './events';
export * from './chargePoint';
export * from './commands';
export * from './planning';
export * from './points';
export * from './mqtt';
