import type { IocList } from './ioc-list.entity';

/** A list's ageing (#21 item 2), in milliseconds; null: not set. */
export interface Ageing {
  lifetimeMs: number | null;
  graceMs: number | null;
}

/**
 * When an entry stops matching: the earliest of the feed's own expiry, its first sighting plus the list's
 * lifetime and its last sighting plus the grace period. The result is the entry's `expires_at`, so the
 * matcher indexes and the retro-hunts of passing expiries treat an aged-out entry as an expired one.
 */
export function effectiveExpiry(feedExpiry: number | null, firstSeen: number, lastSeen: number, ageing: Ageing): number | null {
  let at = feedExpiry;
  if (ageing.lifetimeMs != null && (at == null || firstSeen + ageing.lifetimeMs < at)) at = firstSeen + ageing.lifetimeMs;
  if (ageing.graceMs != null && (at == null || lastSeen + ageing.graceMs < at)) at = lastSeen + ageing.graceMs;
  return at;
}

/** The list's ageing settings in milliseconds. */
export function ageingOf(list: Pick<IocList, 'entryLifetimeSeconds' | 'ageingGraceSeconds'>): Ageing {
  return {
    lifetimeMs: list.entryLifetimeSeconds == null ? null : list.entryLifetimeSeconds * 1000,
    graceMs: list.ageingGraceSeconds == null ? null : list.ageingGraceSeconds * 1000,
  };
}
