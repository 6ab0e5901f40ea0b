// Shared by the fold tests: run lines through the parser and the folder, and a comparable summary.
import { createDirectionClassifier } from '../../../src/modules/log-upload/flows/direction';
import { Connection, ConnectionEndpoint, ConnectionFolder } from '../../../src/modules/log-upload/flows/fold';
import { PacketBatch } from '../../../src/modules/log-upload/parsing/packet-batch';
import { TcpdumpParser } from '../../../src/modules/log-upload/parsing/tcpdump-parser';

/** Parses `text` in chunks cut at `cuts` (byte offsets) and folds every batch as it comes. */
export function foldText(
  text: string,
  internalNetworks: string[] = [],
  cuts: number[] = [],
  classifier = createDirectionClassifier(internalNetworks),
): Connection[] {
  const parser = new TcpdumpParser();
  const folder = new ConnectionFolder(classifier, 16);
  const bytes = Buffer.from(text, 'latin1');
  const batch = new PacketBatch(16);
  let from = 0;
  for (const cut of [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)) {
    batch.clear();
    folder.add(parser.push(bytes.subarray(from, cut), batch));
    from = cut;
  }
  batch.clear();
  folder.add(parser.push(bytes.subarray(from), batch));
  folder.add(parser.end());
  return folder.finish();
}

export interface EndpointSummary {
  ip: string;
  port: number | null;
  internal: boolean;
  canCrossInternet: boolean;
}

export interface ConnectionSummary {
  family: number;
  protocol: number;
  direction: string;
  openedBy: string;
  initiator: EndpointSummary;
  responder: EndpointSummary;
  internal: string;
  external: string;
  packetsForward: number;
  bytesForward: number;
  packetsReverse: number;
  bytesReverse: number;
  firstMicros: number;
  lastMicros: number;
}

function endpoint(e: ConnectionEndpoint): EndpointSummary {
  return { ip: e.ip, port: e.port, internal: e.internal, canCrossInternet: e.canCrossInternet };
}

export const at = (e: { ip: string; port: number | null }) => (e.port === null ? e.ip : `${e.ip}:${e.port}`);

export function summarize(c: Connection): ConnectionSummary {
  return {
    family: c.family,
    protocol: c.protocol,
    direction: c.direction,
    openedBy: c.openedBy,
    initiator: endpoint(c.initiator),
    responder: endpoint(c.responder),
    internal: at(c.internal),
    external: at(c.external),
    packetsForward: c.packetsForward,
    bytesForward: c.bytesForward,
    packetsReverse: c.packetsReverse,
    bytesReverse: c.bytesReverse,
    firstMicros: c.firstMicros,
    lastMicros: c.lastMicros,
  };
}
