/**
 * DNS questions of one capture, grouped for matching: one group per (querying host, qname, qtype), with its
 * count, first/last capture time and the answers its responses carried. Pure: no DB, no GraphQL; runs on the
 * parse thread beside the connection folder, so only the groups (not every DNS row) cross to the main thread.
 *
 * - The querying host is the sender of the query (the end that does not use port 53; on mDNS both use 5353).
 * - A response answers the last query with its id between the same two hosts (server to client); its A, AAAA
 *   and CNAME records are attached to every group that query counted in (a query may ask several questions).
 * - Answers are compact: `A 192.0.2.1`, `CNAME x.example.net`, each once per group, at most MAX_ANSWERS; an A or
 *   AAAA record whose data is no address is not kept (a CNAME name is within DNS's limits: dns-text.ts).
 */
import { isIPv4, isIPv6 } from 'node:net';
import { formatIpv4 } from '../../../common/net';
import type { DnsRow } from '../parsing/dns-text';
import { ipv6Text, PacketBatch } from '../parsing/packet-batch';
import { DirectionClassifier, Direction } from './direction';

export interface DnsQueryGroup {
  /** The querying host's address (tcpdump's spelling for IPv6). */
  clientIp: string;
  /** OUTBOUND when the querying host is inside (one of ours asked), INBOUND when an outside host asked. */
  direction: Direction;
  qname: string;
  qtype: string;
  count: number;
  firstMicros: number;
  lastMicros: number;
  /** A/AAAA/CNAME records of the responses to these queries, in the order first seen. */
  answers: string[];
}

/** Answers kept per group: enough to explain a hit, bounded for a name that resolves to a CDN's many addresses. */
export const MAX_ANSWERS = 16;
const KEPT_ANSWER = /^(?:A|AAAA|CNAME) /;

/** An answer a hit keeps: a CNAME (its name already within DNS's limits) or an A/AAAA record that holds an address. */
function keptAnswer(answer: string): boolean {
  if (!KEPT_ANSWER.test(answer)) return false;
  if (answer.startsWith('CNAME ')) return true;
  return answer.startsWith('A ') ? isIPv4(answer.slice(2)) : isIPv6(answer.slice(5));
}

/** An address as a map key: the IPv4 integer, or tcpdump's IPv6 text (IPv6 rows are few). */
type AddressKey = number | string;

interface Group extends DnsQueryGroup {
  client: AddressKey;
}

interface PendingQuery {
  client: AddressKey;
  server: AddressKey;
  groups: Group[];
}

export class DnsQueryFolder {
  /** Groups by qname (the parser's string, hashed once), then by client and qtype in a short list. */
  private readonly byName = new Map<string, Group[]>();
  private readonly groups: Group[] = [];
  /** By query id: the last query with that id between each client and server, and the groups it counted in. */
  private readonly pending = new Map<number, PendingQuery[]>();

  constructor(private readonly classifier: DirectionClassifier) {}

  /** Folds the DNS rows of one push()/end() of the parser; `batch` is the batch that push returned. */
  add(batch: PacketBatch, rows: readonly DnsRow[]): void {
    let lastPacket = -1;
    let lastPending: PendingQuery | null = null;
    for (const row of rows) {
      const i = row.packet;
      const slot = batch.v6Slot[i];
      const src: AddressKey = slot < 0 ? batch.srcV4[i] : ipv6Text(batch.v6Words, slot * 8);
      const dst: AddressKey = slot < 0 ? batch.dstV4[i] : ipv6Text(batch.v6Words, slot * 8 + 4);
      const ts = batch.tsMicros[i];
      if (row.kind === 'query') {
        const g = this.group(batch, i, slot, src, row);
        g.count++;
        if (ts < g.firstMicros) g.firstMicros = ts;
        if (ts > g.lastMicros) g.lastMicros = ts;
        // Several questions of one packet share one pending entry; a later query with the same id replaces it.
        if (i !== lastPacket || !lastPending) {
          lastPacket = i;
          lastPending = { client: src, server: dst, groups: [] };
          const same = this.pending.get(row.id);
          if (!same) this.pending.set(row.id, [lastPending]);
          else {
            const k = same.findIndex((p) => p.client === src && p.server === dst);
            if (k >= 0) same[k] = lastPending;
            else same.push(lastPending);
          }
        }
        lastPending.groups.push(g);
      } else {
        const asked = this.pending.get(row.id)?.find((p) => p.client === dst && p.server === src);
        if (!asked) continue;
        // A group holds at most MAX_ANSWERS and takes the first new ones in order: the response's first
        // 2 * MAX_ANSWERS distinct kept answers hold them all, so a response of thousands of answers to a query of
        // thousands of questions costs one pass over its answers, not one per question.
        const kept: string[] = [];
        for (const answer of row.answers) {
          if (kept.length === 2 * MAX_ANSWERS) break;
          if (keptAnswer(answer) && !kept.includes(answer)) kept.push(answer);
        }
        for (const g of asked.groups) {
          for (const answer of kept) if (g.answers.length < MAX_ANSWERS && !g.answers.includes(answer)) g.answers.push(answer);
        }
      }
    }
  }

  /** The groups, in the order first seen. */
  finish(): DnsQueryGroup[] {
    return this.groups.map(({ client: _client, ...g }) => g);
  }

  private group(batch: PacketBatch, i: number, slot: number, src: AddressKey, row: DnsRow): Group {
    let list = this.byName.get(row.qname);
    if (!list) {
      list = [];
      this.byName.set(row.qname, list);
    }
    for (const g of list) if (g.client === src && g.qtype === row.qtype) return g;
    const inside = slot < 0 ? this.classifier.isInternalV4(batch.srcV4[i]) : this.classifier.isInternalV6(batch.v6Words, slot * 8);
    const ts = batch.tsMicros[i];
    const g: Group = {
      client: src,
      clientIp: typeof src === 'number' ? formatIpv4(src) : src,
      direction: inside ? Direction.OUTBOUND : Direction.INBOUND,
      qname: row.qname,
      qtype: row.qtype,
      count: 0,
      firstMicros: ts,
      lastMicros: ts,
      answers: [],
    };
    list.push(g);
    this.groups.push(g);
    return g;
  }
}
