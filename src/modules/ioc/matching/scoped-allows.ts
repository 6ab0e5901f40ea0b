/**
 * ALLOW entries that apply to one device, or one internal host of it, rather than to the whole policy (#17 item 4:
 * a FALSE_POSITIVE verdict scoped that narrowly; ioc-scope.entity.ts). They are few (analysts make them one
 * verdict at a time), so they are kept apart from the policy's index as plain key ranges per device, and the
 * processor asks them about each hit after the index has matched: a scoped allow removes the hits it covers and
 * changes nothing else (which end of a connection is ours is decided before, as without it).
 */
export interface ScopedAllow {
  entryId: number;
  listId: number;
  /** The entry's first and last address as 32-digit hex keys (ioc-range.ts), as hits key their addresses. */
  start: string;
  end: string;
  deviceId: number;
  /** The internal host's key; null: every host of the device. */
  hostKey: string | null;
  expiresAt: number | null;
}

export class ScopedAllows {
  private readonly byDevice = new Map<number, ScopedAllow[]>();
  /** The earliest expiry still ahead: the policy's matcher is rebuilt after it (IocIndexCache). */
  readonly validUntil: number;

  constructor(allows: readonly ScopedAllow[], now: number) {
    let validUntil = Infinity;
    for (const a of allows) {
      if (a.expiresAt != null && a.expiresAt <= now) continue;
      if (a.expiresAt != null && a.expiresAt < validUntil) validUntil = a.expiresAt;
      const list = this.byDevice.get(a.deviceId) ?? [];
      list.push(a);
      this.byDevice.set(a.deviceId, list);
    }
    this.validUntil = validUntil;
  }

  get size(): number {
    let n = 0;
    for (const list of this.byDevice.values()) n += list.length;
    return n;
  }

  /** True when the device has any scoped allow (the processor skips the check otherwise). */
  hasDevice(deviceId: number): boolean {
    return this.byDevice.has(deviceId);
  }

  /** The scoped allow that removes a hit of `deviceId` on the matched address `matchedKey` with internal host `hostKey`, if any. */
  covering(deviceId: number, matchedKey: string, hostKey: string, now: number): ScopedAllow | null {
    const list = this.byDevice.get(deviceId);
    if (!list) return null;
    for (const a of list) {
      if (a.expiresAt != null && a.expiresAt <= now) continue;
      if (matchedKey < a.start || matchedKey > a.end) continue;
      if (a.hostKey !== null && a.hostKey !== hostKey) continue;
      return a;
    }
    return null;
  }
}

export const NO_SCOPED_ALLOWS = new ScopedAllows([], 0);
