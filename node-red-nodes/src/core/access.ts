/**
 * Who may see what (pure). The API scopes every answer with these functions; the browser never does.
 * admin: everything plus the admin API; head: everything; lead: the sites and lines in their scope;
 * worker: the assets in their scope; citizen: no asset, only the grievances they reported.
 */
import type { Role, User, UserScope } from './assetModel';

/** The identity a check needs (a User, or the claims of a verified access token plus the scope). */
export interface Principal {
  login: string;
  role: Role;
  scope: UserScope;
}

/** Anything located in the asset model: an Asset, or a reading's {site, line, asset}. */
export interface AssetRef {
  site: string;
  line?: string | undefined;
  /** The asset id (Asset.id). */
  id: string;
}

export type Visibility = 'all' | 'some' | 'none';

const RANK: Record<Role, number> = { admin: 4, head: 3, lead: 2, worker: 1, citizen: 0 };

/** Role at or above `min` in admin > head > lead > worker > citizen (for "this endpoint needs at least"). */
export function hasRole(principal: Pick<Principal, 'role'>, min: Role): boolean {
  return RANK[principal.role] >= RANK[min];
}

const seesAll = (p: Principal): boolean => p.role === 'admin' || p.role === 'head';

/** May this user see this asset (its telemetry, scores, events)? */
export function canSee(p: Principal, asset: AssetRef): boolean {
  if (seesAll(p)) return true;
  switch (p.role) {
    case 'lead':
      return (
        p.scope.sites.includes(asset.site) ||
        (asset.line !== undefined && p.scope.lines.includes(`${asset.site}/${asset.line}`))
      );
    case 'worker':
      return p.scope.assets.includes(`${asset.site}/${asset.id}`);
    default:
      return false;
  }
}

/** The assets this user may see, in their order. */
export function scopeFilter<A extends AssetRef>(p: Principal, assets: readonly A[]): A[] {
  return seesAll(p) ? assets.slice() : assets.filter((a) => canSee(p, a));
}

/** How much of a site this user sees: all of it, some of its lines or assets, or nothing. */
export function siteVisibility(p: Principal, site: string): Visibility {
  if (seesAll(p)) return 'all';
  if (p.role === 'lead') {
    if (p.scope.sites.includes(site)) return 'all';
    return p.scope.lines.some((l) => l.startsWith(`${site}/`)) ? 'some' : 'none';
  }
  if (p.role === 'worker') return p.scope.assets.some((a) => a.startsWith(`${site}/`)) ? 'some' : 'none';
  return 'none';
}

/**
 * How much of a line this user sees. A worker's scope names assets, not lines: pass the model's assets
 * to learn whether one of theirs is on this line (without them a worker sees no whole line: 'none').
 */
export function lineVisibility(
  p: Principal,
  site: string,
  line: string,
  assets: readonly AssetRef[] = [],
): Visibility {
  if (seesAll(p)) return 'all';
  if (p.role === 'lead')
    return p.scope.sites.includes(site) || p.scope.lines.includes(`${site}/${line}`) ? 'all' : 'none';
  if (p.role === 'worker')
    return assets.some((a) => a.site === site && a.line === line && canSee(p, a)) ? 'some' : 'none';
  return 'none';
}

/** A citizen grievance (water network): who reported it and, when known, where. */
export interface GrievanceRef {
  reporter: string;
  site?: string;
  line?: string;
  asset?: string;
}

/** Citizens see only their own grievances; staff see those located within what they may see. */
export function canSeeGrievance(p: Principal, g: GrievanceRef): boolean {
  if (g.reporter === p.login) return true;
  if (seesAll(p)) return true;
  if (p.role === 'citizen' || g.site === undefined) return false;
  if (g.asset !== undefined) return canSee(p, { site: g.site, line: g.line, id: g.asset });
  return (
    p.role === 'lead' &&
    (g.line === undefined ? siteVisibility(p, g.site) === 'all' : lineVisibility(p, g.site, g.line) === 'all')
  );
}

/** Only admins use the admin API (registry, users). */
export const canAdminister = (p: Pick<Principal, 'role'>): boolean => p.role === 'admin';

/** A principal from a user (drops the password hash). */
export const principalOf = (u: User): Principal => ({ login: u.login, role: u.role, scope: u.scope });
