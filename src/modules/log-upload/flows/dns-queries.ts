/**
 * DNS questions of one capture, grouped for matching: one group per (querying host, qname, qtype), with its
 * count, first/last capture time and the answers its responses carried. Pure: no DB, no GraphQL; runs on the
 * parse thread beside the connection folder, so only the groups (not every DNS row) cross to the main thread.
 *
 * - The querying host is the sender of the query (the end that does not use port 53; on mDNS both use 5353).
 * - A response answers the last query with its id between the same two hosts (server to client); its A, AAAA
 *   and CNAME records are attached to every group that query counted in (a query may ask several questions).
 * - Answers are compact: `A 192.0.2.1`, `CNAME x.example.net`, each once per group, at most MAX_ANSWERS.
 */
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

export class DnsQueryFolder {
  private readonly groups = new Map<string, DnsQueryGroup>();
  /** `id|client|server` of the last query seen with that id between those hosts -> the groups it counted in. */
  private readonly pending = new Map<string, DnsQueryGroup[]>();

  constructor(private readonly classifier: DirectionClassifier) {}

  /** Folds the DNS rows of one push()/end() of the parser; `batch` is the batch that push returned. */
  add(batch: PacketBatch, rows: readonly DnsRow[]): void {
    let lastPacket = -1;
    let lastKey = '';
    let lastPending: DnsQueryGroup[] = [];
    for (const row of rows) {
      const i = row.packet;
      const slot = batch.v6Slot[i];
      const src = slot < 0 ? formatIpv4(batch.srcV4[i]) : ipv6Text(batch.v6Words, slot * 8);
      const dst = slot < 0 ? formatIpv4(batch.dstV4[i]) : ipv6Text(batch.v6Words, slot * 8 + 4);
      const ts = batch.tsMicros[i];
      if (row.kind === 'query') {
        const inside = slot < 0 ? this.classifier.isInternalV4(batch.srcV4[i]) : this.classifier.isInternalV6(batch.v6Words, slot * 8);
        const key = `${src}|${row.qname}|${row.qtype}`;
        let g = this.groups.get(key);
        if (!g) {
          g = {
            clientIp: src,
            direction: inside ? Direction.OUTBOUND : Direction.INBOUND,
            qname: row.qname,
            qtype: row.qtype,
            count: 0,
            firstMicros: ts,
            lastMicros: ts,
            answers: [],
          };
          this.groups.set(key, g);
        }
        g.count++;
        if (ts < g.firstMicros) g.firstMicros = ts;
        if (ts > g.lastMicros) g.lastMicros = ts;
        // Several questions of one packet share one pending entry; a later query with the same id replaces it.
        if (i !== lastPacket) {
          lastPacket = i;
          lastKey = `${row.id}|${src}|${dst}`;
          lastPending = [];
          this.pending.set(lastKey, lastPending);
        }
        lastPending.push(g);
      } else {
        const asked = this.pending.get(`${row.id}|${dst}|${src}`);
        if (!asked) continue;
        for (const answer of row.answers) {
          if (!KEPT_ANSWER.test(answer)) continue;
          for (const g of asked) if (g.answers.length < MAX_ANSWERS && !g.answers.includes(answer)) g.answers.push(answer);
        }
      }
    }
  }

  /** The groups, in the order first seen. */
  finish(): DnsQueryGroup[] {
    return [...this.groups.values()];
  }
}
