/**
 * Readiness (GET /readyz, `ns2 healthcheck`): ready to take traffic only when at least one zone is
 * configured and every configured zone has a loaded version that has not expired. A server with no
 * zones (a config mount gone wrong) answers REFUSED to everything; a zone never loaded or expired
 * answers SERVFAIL — neither should receive a load balancer's or anycast announcement's traffic.
 * Pure: the daemon passes its zone table, the healthcheck the database rows.
 */
import type { ZoneState } from '../store/zone-store.js';

export interface ZoneStatusView {
  state: ZoneState;
  /** Unix seconds; null when the zone has no deadline (never loaded). */
  expiresAt: number | null;
}

export type NotReadyReason = 'not_loaded' | 'expired' | 'unknown';

export interface NotReadyZone {
  zone: string;
  reason: NotReadyReason;
  /** For an expired zone: when it expired (ISO 8601 UTC). */
  expired_at?: string;
}

export interface Readiness {
  ready: boolean;
  /** Zones configured. */
  zones: number;
  /** Why the server as a whole is not ready, when no zone-level reason says it. */
  error?: string;
  not_ready: NotReadyZone[];
}

/**
 * `configured`: the zone names of the config; `status`: what the server holds for a name (undefined
 * when it holds nothing: not yet in the table or database).
 */
export function readiness(
  configured: readonly string[],
  status: (zone: string) => ZoneStatusView | undefined,
  now: number,
): Readiness {
  const notReady: NotReadyZone[] = [];
  for (const zone of configured) {
    const s = status(zone);
    if (!s) notReady.push({ zone, reason: 'unknown' });
    else if (s.state === 'never_loaded') notReady.push({ zone, reason: 'not_loaded' });
    else if (s.state === 'expired' || (s.expiresAt !== null && s.expiresAt <= now))
      notReady.push({
        zone,
        reason: 'expired',
        ...(s.expiresAt === null ? {} : { expired_at: new Date(s.expiresAt * 1000).toISOString() }),
      });
  }
  const none = configured.length === 0;
  return {
    ready: !none && notReady.length === 0,
    zones: configured.length,
    ...(none ? { error: 'no zones configured' } : {}),
    not_ready: notReady,
  };
}
