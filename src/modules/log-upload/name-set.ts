import zlib from 'node:zlib';
import { buildDomainIndex, DomainIndex } from '../ioc/matching/domain-index';
import type { DnsQueryGroup } from './flows/dns-queries';

/**
 * The distinct DNS question names one upload asked (every name the domain matcher looks up), kept so that a
 * DOMAIN-list change finds the stored uploads it affects without re-reading their captures (retro-hunt), as the
 * address set does for IP lists. Pure: no database.
 *
 * Encoding: the names sorted, joined by "\n" and deflated (raw): sorted names share long runs that deflate keeps once.
 */
export type NameSet = readonly string[];

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
  private readonly index: DomainIndex;

  constructor(names: Iterable<string>) {
    const list = { id: 0, kind: 'BLOCK' as const, severity: 0, category: '' };
    let id = 0;
    const entries = (function* () {
      for (const name of names) yield { id: ++id, listId: 0, name };
    })();
    this.index = buildDomainIndex([list], entries);
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
