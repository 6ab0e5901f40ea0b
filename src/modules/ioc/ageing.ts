import type { EntityManager } from 'typeorm';
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

/** Rows per UPDATE of SightingUpdates. */
const UPDATE_IDS = 1_000;

/**
 * Kept rows of an import (ioc or ioc_domain) to mark seen now, or whose expiry alone moves, grouped by what they
 * get and written UPDATE_IDS rows a statement; `pause` after each (the import gives the event loop a turn).
 */
export class SightingUpdates {
  private readonly groups = new Map<string, { seen: boolean; expiresAt: number | null | undefined; ids: number[] }>();

  constructor(
    private readonly em: EntityManager,
    private readonly table: 'ioc' | 'ioc_domain',
    private readonly listId: number,
    private readonly now: number,
    private readonly pause: () => Promise<void>,
  ) {}

  /** `seen`: last seen now (and first seen, if never); `expiresAt`: the new expiry (undefined: unchanged). */
  async add(id: number, seen: boolean, expiresAt: number | null | undefined): Promise<void> {
    const key = `${seen ? 's' : 'x'}${expiresAt === undefined ? '' : String(expiresAt)}`;
    let g = this.groups.get(key);
    if (!g) this.groups.set(key, (g = { seen, expiresAt, ids: [] }));
    g.ids.push(id);
    if (g.ids.length >= UPDATE_IDS) await this.write(key);
  }

  async flush(): Promise<void> {
    for (const key of [...this.groups.keys()]) await this.write(key);
  }

  private async write(key: string): Promise<void> {
    const g = this.groups.get(key);
    this.groups.delete(key);
    if (!g || g.ids.length === 0) return;
    const sets: string[] = [];
    const params: unknown[] = [];
    if (g.seen) {
      sets.push('last_seen_in_source = ?', 'first_seen_in_source = COALESCE(first_seen_in_source, ?)');
      params.push(this.now, this.now);
    }
    if (g.expiresAt !== undefined) {
      sets.push('expires_at = ?');
      params.push(g.expiresAt);
    }
    await this.em.query(`UPDATE ${this.table} SET ${sets.join(', ')} WHERE list_id = ? AND id IN (${g.ids.map(() => '?').join(', ')})`, [
      ...params,
      this.listId,
      ...g.ids,
    ]);
    await this.pause();
  }
}
