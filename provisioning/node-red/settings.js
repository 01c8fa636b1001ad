/**
 * Node-RED settings for EVTwin, shared by the local stack (`npm start`, which overrides userDir,
 * flowFile, port and credentialSecret) and docker compose (`node-red --settings this-file`).
 * Everything comes from environment variables; no secret is ever written here.
 *
 *   EVTWIN_UI_HOST            interface to listen on (default 127.0.0.1; compose sets 0.0.0.0)
 *   EVTWIN_UI_PORT / PORT     editor and HTTP port (default 1880)
 *   EVTWIN_FLOW_FILE          flow file (default evtwin-stack.json in the user dir)
 *   EVTWIN_CREDENTIAL_SECRET  key that encrypts node credentials (required when the editor is exposed)
 *   EVTWIN_ADMIN_USER, EVTWIN_ADMIN_PASSWORD_HASH   editor login (bcrypt hash: `npx node-red admin hash-pw`)
 *   EVTWIN_INFLUX_URL, EVTWIN_MQTT_URL, EVTWIN_MQTT_PROTOCOL, EVTWIN_ASSETS
 *                             used by the flows as ${VAR} and offered to function nodes as global.get('env')
 *   EVTWIN_LOG_LEVEL          Node-RED console log level (default info)
 */
const env = process.env;
const uiHost = env.EVTWIN_UI_HOST || '127.0.0.1';
const loopback = ['127.0.0.1', 'localhost', '::1'].includes(uiHost);

const adminAuth =
  env.EVTWIN_ADMIN_USER && env.EVTWIN_ADMIN_PASSWORD_HASH
    ? {
        type: 'credentials',
        users: [
          { username: env.EVTWIN_ADMIN_USER, password: env.EVTWIN_ADMIN_PASSWORD_HASH, permissions: '*' },
        ],
      }
    : undefined;

if (!adminAuth && !loopback) {
  const bar = '!'.repeat(78);
  console.warn(
    [
      bar,
      `!! WARNING: the Node-RED editor listens on ${uiHost} WITHOUT a login.`,
      '!! Anyone who can reach this port can run code on this machine.',
      '!! Set EVTWIN_ADMIN_USER and EVTWIN_ADMIN_PASSWORD_HASH (bcrypt), or bind EVTWIN_UI_HOST=127.0.0.1.',
      bar,
    ].join('\n'),
  );
}
if (!env.EVTWIN_CREDENTIAL_SECRET && !loopback) {
  console.warn('!! WARNING: EVTWIN_CREDENTIAL_SECRET is not set: node credentials use a generated key.');
}

module.exports = {
  uiHost,
  uiPort: Number(env.EVTWIN_UI_PORT || env.PORT || 1880),
  flowFile: env.EVTWIN_FLOW_FILE || 'evtwin-stack.json',
  flowFilePretty: true,
  ...(env.EVTWIN_CREDENTIAL_SECRET ? { credentialSecret: env.EVTWIN_CREDENTIAL_SECRET } : {}),
  ...(adminAuth ? { adminAuth } : {}),
  httpAdminRoot: '/',
  httpNodeRoot: '/',
  // Context survives restarts (per-device state, counters).
  contextStorage: {
    default: { module: 'localfilesystem' },
    memory: { module: 'memory' },
  },
  functionGlobalContext: {
    env: {
      EVTWIN_INFLUX_URL: env.EVTWIN_INFLUX_URL,
      EVTWIN_MQTT_URL: env.EVTWIN_MQTT_URL,
      EVTWIN_ASSETS: env.EVTWIN_ASSETS,
    },
  },
  exportGlobalContextKeys: false,
  diagnostics: { enabled: false },
  telemetry: { enabled: false },
  editorTheme: {
    tours: false,
    header: { title: 'EVTwin' },
  },
  logging: {
    console: { level: env.EVTWIN_LOG_LEVEL || 'info', metrics: false, audit: false },
  },
};
