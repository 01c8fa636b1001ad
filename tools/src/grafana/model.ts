/**
 * The Grafana side of EVTwin in one place: datasource uids, the folders dashboards are provisioned into,
 * which team (one per users.yaml role) sees which folder. Read by the dashboard generator, the
 * provisioning files' tests, the permissions sync and the local stack.
 */
import type { Role } from 'node-red-contrib-evtwin';

/** Our datasource (evtwin-twin-datasource), provisioned in provisioning/grafana/datasources/evtwin.yaml. */
export const EVTWIN_DS = { type: 'evtwin-twin-datasource', uid: 'evtwin' } as const;
/** Grafana's built-in InfluxDB datasource on database evtwin (InfluxQL); alert rules run on it. */
export const INFLUX_DS = { type: 'influxdb', uid: 'evtwin-influxdb' } as const;
export const PANEL_PLUGIN_ID = 'evtwin-twin-panel';
/**
 * Grafana's data-proxy path of our datasource's `api` route (grafana-datasource/src/plugin.json): the
 * proxy adds the service token and, with `send_user_header`, X-Grafana-User, so the API applies the
 * clicking user's role (only lead and head may command chargers; everyone else gets a 403).
 */
export const EVTWIN_PROXY_API = `/api/datasources/proxy/uid/${EVTWIN_DS.uid}/api`;
/**
 * Grafana refuses a visualization action's POST to its own API (header X-Grafana-Action) unless the path
 * matches `[security] actions_allow_post_url`: only the charger-command route is let through.
 */
export const ACTIONS_ALLOW_POST_URL = `${EVTWIN_PROXY_API}/chargers/*`;
export const DATASOURCE_PLUGIN_ID = 'evtwin-twin-datasource';

/** Grafana teams: one per users.yaml role that reads dashboards (admins are Grafana admins). */
export const TEAM_ROLES = ['head', 'lead', 'worker', 'citizen'] as const satisfies readonly Role[];
export type TeamRole = (typeof TEAM_ROLES)[number];
export const teamName = (role: TeamRole): string => `evtwin-${role}`;

/** Grafana's folder permission levels (folder permissions API). */
export const PERMISSION = { view: 1, edit: 2, admin: 4 } as const;

export interface FolderSpec {
  uid: string;
  title: string;
  /** Directory under provisioning/grafana/dashboards/. */
  dir: string;
  /** Teams that may view the folder's dashboards (the API still scopes the data per user). */
  viewers: readonly TeamRole[];
  /**
   * Teams given Edit instead of View: Grafana runs a dashboard's visualization actions (the Lead
   * dashboard's charger commands) only for users who may edit it. Provisioned dashboards still cannot be
   * saved from the UI (allowUiUpdates: false), and the API still checks each command's role.
   */
  operators?: readonly TeamRole[];
}

/** Folders per role. Lower roles' folders are visible to the roles above them. */
export const FOLDERS: readonly FolderSpec[] = [
  { uid: 'evtwin-head', title: 'EVTwin Head', dir: 'head', viewers: ['head'] },
  {
    uid: 'evtwin-lead',
    title: 'EVTwin Lead',
    dir: 'lead',
    viewers: ['head', 'lead'],
    operators: ['head', 'lead'],
  },
  { uid: 'evtwin-worker', title: 'EVTwin Worker', dir: 'worker', viewers: ['head', 'lead', 'worker'] },
  {
    uid: 'evtwin-networks',
    title: 'EVTwin Networks',
    dir: 'networks',
    // Citizens see the public charging status and the water map (their grievances are theirs only).
    viewers: ['head', 'lead', 'citizen'],
  },
  { uid: 'evtwin-device', title: 'EVTwin Device', dir: 'device', viewers: ['head', 'lead', 'worker'] },
];

/** Alert rules live in their own folder (alerting provisioning creates it by title). */
export const ALERT_FOLDER_TITLE = 'EVTwin Alerts';
export const ALERT_FOLDER_VIEWERS: readonly TeamRole[] = ['head', 'lead'];

export const DASHBOARD_UIDS = {
  head: 'evtwin-head',
  lead: 'evtwin-lead',
  worker: 'evtwin-worker',
  water: 'evtwin-water',
  charging: 'evtwin-charging',
  // The datasource's frames link here (grafana-datasource/src/api/frames.ts DEVICE_DASHBOARD_UID).
  device: 'evtwin-device',
} as const;
