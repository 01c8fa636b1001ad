/** Placeholder: the plugin itself is built in its own issue; this keeps the workspace building. */
export const PLUGIN_ID = 'evtwin-twin-panel';
