import zlib from 'node:zlib';
import { DomainIndex, DomainIndexBuilder } from '../ioc/matching/domain-index';
import type { BuildThreads } from '../ioc/matching/build-thread';
import { nextTurn } from '../../common/async/next-turn';
import type { DnsQueryGroup } from './flows/dns-queries';

/**
 * The distinct DNS question names one upload asked (every name the domain matcher looks up), kept so that a
 * DOMAIN-list change finds the stored uploads it affects without re-reading their captures (retro-hunt), as the
 * address set does for IP lists. Pure: no database.
 *
 * Encoding: the names sorted, joined by "\n" and deflated (raw): sorted names share long runs that deflate keeps once.
 */
export type NameSet = readonly string[];

const CHANGES_LIST = { id: 0, kind: 'BLOCK' as const, severity: 0, category: '' };

export function nameSetOf(queries: readonly DnsQueryGroup[]): NameSet {
  return [...new Set(queries.map((q) => q.qname))].sort();
}

/** What is stored (upload_name_set.data). */
export function encodeNameSet(names: NameSet): Buffer {
  return names.length === 0 ? Buffer.alloc(0) : zlib.deflateRawSync(Buffer.from(names.join('\n'), 'utf8'));
}

export function decodeNameSet(data: Uint8Array, count: number): NameSet {
  if (count === 0) return [];
  const names = zlib.inflateRawSync(data).toString('utf8').split('\n');
  if (names.length !== count) throw new Error(`name set holds ${names.length} names, ${count} expected`);
  return names;
}

/** Changed domain entries prepared for intersection: a name meets them when one of them is the name or a parent of it. */
export class DomainChanges {
  private constructor(private readonly index: DomainIndex) {}

  /**
   * A whole DOMAIN list comes here when it is attached, detached or deleted (a million names for a big feed): the
   * names go into the builder with a turn of the event loop every 50,000, and `threads` builds a large index on a
   * worker thread (about 0.9 s of the event loop for 1M names before, inside the retro-hunt's planning).
   */
  static async of(names: readonly string[], threads?: BuildThreads): Promise<DomainChanges> {
    const builder = new DomainIndexBuilder([CHANGES_LIST], { packed: true });
    for (let i = 0; i < names.length; i++) {
      builder.add({ id: i + 1, listId: 0, name: names[i] });
      if ((i + 1) % 50_000 === 0) await nextTurn();
    }
    return new DomainChanges(threads ? await threads.domains(builder) : builder.build());
  }

  get size(): number {
    return this.index.stats.entries;
  }

  /** True when an upload that asked these names may judge differently under the changed entries. */
  meets(names: NameSet): boolean {
    for (const name of names) if (this.index.longestSlot(name) >= 0) return true;
    return false;
  }
}
