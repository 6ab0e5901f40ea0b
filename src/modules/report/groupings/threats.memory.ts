import { Direction } from '../../flow-hit/flow-hit.enums';
import { ResolvedHitFilter } from '../../flow-hit/hit-filter';
import { IocCategory } from '../../ioc/ioc.enums';
import { AccountHits } from '../hit-memory';
import { byteOrder, denseBy, PairTable, scratchInt32, select, topBy, unitSums } from '../hit-memory.report';
import { ThreatRow } from '../report.types';

/**
 * The triage view: (host, entry, category) pairs of the worst severity ranked by hits, then the next severity
 * while rows are missing (threats.sql.ts). A pair's rows split by list and CIDR as its hits recorded them.
 */
export function threats(data: AccountHits, f: ResolvedHitFilter, first: number, levels: number[]): ThreatRow[] {
  const sel = select(data, f);
  const groups = data.groups.values;
  const hostInfo = data.hosts.values;
  const pair = denseBy(data, 'entry+category', (g) => `${g.iocId}|${g.category}`);
  const pairs = pair.values.length;
  const pairEntry = new Int32Array(pairs);
  for (let g = 0; g < groups.length; g++) pairEntry[pair.of[g]] = groups[g].iocId;
  const out: ThreatRow[] = [];
  for (const severity of levels) {
    if (out.length >= first) break;
    const want = first - out.length;
    // Each row of this severity counted under its (host, entry, category) pair, in an open-addressing table of
    // typed arrays (far cheaper than a Map at tens of thousands of pairs); rowSlot remembers each row's pair for the second pass.
    const isLevel = Uint8Array.from(groups, (g) => (g.severity === severity ? 1 : 0));
    const pairOf = pair.of;
    // Sized by this severity's hits (from the per-group measures): distinct pairs cannot be more.
    const perGroup = unitSums(data, sel, 'group');
    let levelHits = 0;
    for (let g = 0; g < groups.length; g++) if (isLevel[g]) levelHits += perGroup.hits[g];
    if (levelHits === 0) continue;
    const table = new PairTable(levelHits);
    const rowSlot = scratchInt32(2, sel.n);
    let j = 0;
    for (const seg of sel.segments) {
      const { group, host } = seg;
      for (let i = 0; i < seg.n; i++, j++) {
        const g = group[i];
        rowSlot[j] = isLevel[g] === 0 ? -1 : table.count(host[i] * pairs + pairOf[g]);
      }
    }
    if (table.size === 0) continue;
    const slots = table.used();
    const hitsOf = (slot: number) => table.counts[slot];
    const ranked = topBy(slots, hitsOf, want, (a, b) => {
      const ka = table.keys[a];
      const kb = table.keys[b];
      const ha = hostInfo[Math.floor(ka / pairs)];
      const hb = hostInfo[Math.floor(kb / pairs)];
      return hitsOf(b) - hitsOf(a) || ha.deviceId - hb.deviceId || byteOrder(ha.ip, hb.ip) || pairEntry[ka % pairs] - pairEntry[kb % pairs];
    });
    const rankOfSlot = new Int32Array(table.keys.length).fill(-1);
    ranked.forEach((slot, r) => (rankOfSlot[slot] = r));
    // The rows of the pairs shown: per (host, entry group), with ports, directions and times.
    interface Acc {
      host: number;
      group: number;
      rank: number;
      hits: number;
      packets: number;
      ports: Set<number>;
      directions: Set<number>;
      first: number;
      last: number;
    }
    const rows = new Map<number, Acc>();
    j = 0;
    for (const seg of sel.segments)
      for (let i = 0; i < seg.n; i++, j++) {
        if (rowSlot[j] < 0) continue;
        const r = rankOfSlot[rowSlot[j]];
        if (r < 0) continue;
        const g = seg.group[i];
        const key = seg.host[i] * groups.length + g;
        let acc = rows.get(key);
        if (!acc)
          rows.set(
            key,
            (acc = { host: seg.host[i], group: g, rank: r, hits: 0, packets: 0, ports: new Set(), directions: new Set(), first: Infinity, last: -Infinity }),
          );
        acc.hits++;
        acc.packets += seg.packets[i];
        if (seg.port[i] >= 0) acc.ports.add(seg.port[i]);
        acc.directions.add(seg.direction[i]);
        if (seg.at[i] < acc.first) acc.first = seg.at[i];
        if (seg.last[i] > acc.last) acc.last = seg.last[i];
      }
    const accs = [...rows.values()].sort((a, b) => a.rank - b.rank || b.hits - a.hits);
    for (const a of accs) {
      const e = groups[a.group];
      out.push({
        deviceId: hostInfo[a.host].deviceId,
        internalIp: hostInfo[a.host].ip,
        iocId: e.iocId,
        iocListId: e.listId,
        matchedCidr: e.cidr,
        severity: e.severity,
        category: e.category as IocCategory,
        hits: a.hits,
        packets: a.packets,
        destinationPorts: [...a.ports].sort((x, y) => x - y).slice(0, 20),
        directions: [...a.directions].map((d) => data.directions.values[d]).sort() as Direction[],
        firstSeenAt: new Date(a.first),
        lastSeenAt: new Date(a.last),
      });
    }
  }
  return out;
}
