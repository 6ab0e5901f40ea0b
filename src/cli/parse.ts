import fs from 'node:fs';
import path from 'node:path';
import { pipeline, Readable } from 'node:stream';
import zlib from 'node:zlib';
import { parseArgs } from 'node:util';
import { createDirectionClassifier, Direction, DirectionClassifier } from '../modules/log-upload/flows/direction';
import { ipv6Text, missingEpochTimestamps, PacketBatch, Protocol, SKIP_REASONS, TcpdumpParser } from '../modules/log-upload/parsing';
import { DNS_SKIP_REASONS, DnsRow, DnsStats } from '../modules/log-upload/parsing/dns-text';
import { CONVERT_HINT, sniff } from '../modules/log-upload/acceptance/sniff';
import { ProgressBar } from '../common/progress/progress-bar';
import { CliFailure, Command, Io, UsageError } from './shared';

export const parse: Command = {
  summary: 'Parse tcpdump -tt -n text (plain or gzip) into tab-separated rows on stdout; a summary with skipped lines on stderr.',
  usage: 'parse FILE|- [--internal CIDR,...] [--dns] [--json]',
  flags: [
    ['FILE|-', 'A `tcpdump -tt -n` text file, plain or gzip; - reads stdin. No database or server is needed.'],
    [
      '--internal CIDR,...',
      "The device's internal networks, as the server would use them for the direction column (comma-separated or repeated; none by default).",
    ],
    [
      '--dns',
      'Print the DNS rows instead of the packets: one row per query question and per response (ts src sport dst dport family id kind qtype qname answers via rcode counts trunc).',
    ],
    ['--json', 'Print the summary (lines, packets, skipped lines by reason) as one JSON object on stderr.'],
  ],
  examples: [
    'pcap-defense parse capture.txt | head',
    'pcap-defense parse capture.txt.gz --internal 10.0.0.0/8,192.168.1.0/24 --json 2>summary.json >rows.tsv',
    'tcpdump -tt -n -r capture.pcap | pcap-defense parse -',
    'pcap-defense parse --dns capture.txt | cut -f10 | sort | uniq -c',
  ],
  async run(argv, io) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { internal: { type: 'string', multiple: true }, json: { type: 'boolean' }, dns: { type: 'boolean' } },
    });
    if (positionals.length !== 1) throw new UsageError('give exactly one FILE (or - for stdin)');
    const internal = (values.internal ?? [])
      .flatMap((v) => v.split(','))
      .map((v) => v.trim())
      .filter(Boolean);
    return parseCommand(positionals[0], internal, values.json === true, io, values.dns === true);
  },
};

/** Read size, and the size of stdout writes: large, so a 15 MB file is a few dozen system calls. */
const CHUNK_BYTES = 1 << 20;
/** Lines read before deciding whether a file lacks -tt (as the upload worker does). */
const EPOCH_DECISION_LINES = 2000;
const PARSE_HEADER = 'ts\tsrc\tsport\tdst\tdport\tfamily\tproto\tlength\tdirection\n';

/**
 * Rows are formatted straight into large byte buffers (no string per field: at a million rows a second the
 * garbage collector would dominate) and written a chunk at a time, honouring backpressure. When the
 * reader goes away (`| head` closes the pipe: EPIPE) the writer marks itself closed and drops the rest
 * quietly; other write errors are thrown.
 */
class RowWriter {
  closed = false;
  buf = Buffer.allocUnsafe(CHUNK_BYTES + MAX_ROW_BYTES);
  pos = 0;
  private queued: Buffer[] = [];
  private failure: Error | null = null;

  constructor(private readonly stream: NodeJS.WritableStream) {
    // Stays attached: an EPIPE for the last write can arrive after the command returned.
    stream.on('error', (e: NodeJS.ErrnoException) => {
      this.closed = true;
      if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') this.failure ??= e;
    });
  }

  /** Queues the current buffer and starts a new one; the stream may keep the old one until written. */
  cut(): void {
    if (this.pos > 0) this.queued.push(this.buf.subarray(0, this.pos));
    this.buf = Buffer.allocUnsafe(CHUNK_BYTES + MAX_ROW_BYTES);
    this.pos = 0;
  }

  discard(): void {
    this.queued = [];
    this.pos = 0;
  }

  /** Writes the full chunks (all of the text with `all`). */
  async drain(all = false): Promise<void> {
    if (all) this.cut();
    const chunks = this.queued;
    this.queued = [];
    for (const chunk of chunks) {
      if (this.closed) break;
      if (!this.stream.write(chunk)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            this.stream.off('drain', done).off('close', done).off('error', done);
            resolve();
          };
          this.stream.on('drain', done).on('close', done).on('error', done);
        });
      }
    }
    if (this.failure) throw this.failure;
  }
}

/** Longest row: a 17-digit timestamp, two 45-character IPv6 texts, ports, names. */
const MAX_ROW_BYTES = 256;
const bytesOf = (s: string) => Buffer.from(s, 'latin1');
const PROTOCOL_BYTES: Buffer[] = [];
for (const [name, value] of Object.entries(Protocol)) if (typeof value === 'number') PROTOCOL_BYTES[value] = bytesOf(`\t${name}\t`);
const IP4_BYTES = bytesOf('\tIP');
const IP6_BYTES = bytesOf('\tIP6');
const INBOUND_BYTES = bytesOf('\tINBOUND\n');
const OUTBOUND_BYTES = bytesOf('\tOUTBOUND\n');
const TAB = 0x09;
const ZERO = 0x30;

function putBytes(buf: Buffer, pos: number, bytes: Buffer): number {
  for (let k = 0; k < bytes.length; k++) buf[pos + k] = bytes[k];
  return pos + bytes.length;
}

/** Decimal digits of a non-negative integer (up to 2^53). */
function putUint(buf: Buffer, pos: number, n: number): number {
  let len = 1;
  for (let m = n; m >= 10; m = Math.floor(m / 10)) len++;
  for (let p = pos + len - 1; p > pos; p--) {
    const q = Math.floor(n / 10);
    buf[p] = ZERO + n - q * 10;
    n = q;
  }
  buf[pos] = ZERO + n;
  return pos + len;
}

function putIpv4(buf: Buffer, pos: number, a: number): number {
  pos = putUint(buf, pos, a >>> 24);
  buf[pos++] = 0x2e;
  pos = putUint(buf, pos, (a >>> 16) & 255);
  buf[pos++] = 0x2e;
  pos = putUint(buf, pos, (a >>> 8) & 255);
  buf[pos++] = 0x2e;
  return putUint(buf, pos, a & 255);
}

/** Appends one tab-separated line per row of the batch (see PARSE_HEADER) to the writer. */
function renderRows(batch: PacketBatch, classifier: DirectionClassifier, w: RowWriter): void {
  const { tsMicros, family, protocol, srcV4, dstV4, srcPort, dstPort, printedLength, v6Slot, v6Words } = batch;
  let buf = w.buf;
  let pos = w.pos;
  for (let i = 0; i < batch.count; i++) {
    // `%u.%06u`, split as formatTimestamp does (exact: whole microseconds below 2^53).
    const ts = tsMicros[i];
    const sec = Math.floor(ts / 1e6);
    pos = putUint(buf, pos, sec);
    buf[pos++] = 0x2e;
    let usec = ts - sec * 1e6;
    for (let p = pos + 5; p >= pos; p--) {
      const q = Math.floor(usec / 10);
      buf[p] = ZERO + usec - q * 10;
      usec = q;
    }
    pos += 6;
    buf[pos++] = TAB;
    const sp = srcPort[i];
    const dp = dstPort[i];
    let outbound: boolean;
    if (family[i] === 4) {
      pos = putIpv4(buf, pos, srcV4[i]);
      buf[pos++] = TAB;
      if (sp >= 0) pos = putUint(buf, pos, sp);
      buf[pos++] = TAB;
      pos = putIpv4(buf, pos, dstV4[i]);
      buf[pos++] = TAB;
      if (dp >= 0) pos = putUint(buf, pos, dp);
      pos = putBytes(buf, pos, IP4_BYTES);
      outbound = classifier.directionV4(srcV4[i], dstV4[i]) === Direction.OUTBOUND;
    } else {
      const o = 8 * v6Slot[i];
      pos += buf.write(ipv6Text(v6Words, o), pos, 'latin1');
      buf[pos++] = TAB;
      if (sp >= 0) pos = putUint(buf, pos, sp);
      buf[pos++] = TAB;
      pos += buf.write(ipv6Text(v6Words, o + 4), pos, 'latin1');
      buf[pos++] = TAB;
      if (dp >= 0) pos = putUint(buf, pos, dp);
      pos = putBytes(buf, pos, IP6_BYTES);
      outbound = classifier.directionV6(v6Words, o, o + 4) === Direction.OUTBOUND;
    }
    pos = putBytes(buf, pos, PROTOCOL_BYTES[protocol[i]]);
    pos = putUint(buf, pos, printedLength[i]);
    pos = putBytes(buf, pos, outbound ? OUTBOUND_BYTES : INBOUND_BYTES);
    if (pos >= CHUNK_BYTES) {
      w.pos = pos;
      w.cut();
      buf = w.buf;
      pos = 0;
    }
  }
  w.pos = pos;
}

const DNS_HEADER = 'ts\tsrc\tsport\tdst\tdport\tfamily\tid\tkind\tqtype\tqname\tanswers\tvia\trcode\tcounts\ttrunc\n';

/** One line per DNS row (DNS_HEADER's columns; the first six as the packet rows print them). DNS rows are few: plain strings. */
function renderDnsRows(batch: PacketBatch, rows: DnsRow[], w: RowWriter): void {
  for (const d of rows) {
    const i = d.packet;
    const ts = batch.tsMicros[i];
    const sec = Math.floor(ts / 1e6);
    const usec = String(ts - sec * 1e6).padStart(6, '0');
    let src: string;
    let dst: string;
    if (batch.family[i] === 4) {
      src = ipv4Text(batch.srcV4[i]);
      dst = ipv4Text(batch.dstV4[i]);
    } else {
      const o = 8 * batch.v6Slot[i];
      src = ipv6Text(batch.v6Words, o);
      dst = ipv6Text(batch.v6Words, o + 4);
    }
    const fields = [
      `${sec}.${usec}`,
      src,
      batch.srcPort[i],
      dst,
      batch.dstPort[i],
      batch.family[i] === 4 ? 'IP' : 'IP6',
      d.id,
      d.kind,
      d.qtype,
      d.qname,
      d.kind === 'response' ? JSON.stringify(d.answers) : '',
      d.via,
      d.rcode,
      d.counts,
      d.truncated ? 'yes' : 'no',
    ];
    const line = `${fields.join('\t')}\n`;
    if (w.pos + Buffer.byteLength(line, 'latin1') > w.buf.length) w.cut();
    w.pos += w.buf.write(line, w.pos, 'latin1');
    if (w.pos >= CHUNK_BYTES) w.cut();
  }
}

function ipv4Text(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

function dnsSummary(s: DnsStats): { lines: number; queries: number; responses: number; skippedByReason: Record<string, number> } {
  const skippedByReason = Object.fromEntries(DNS_SKIP_REASONS.filter((r) => s.skipped[r] > 0).map((r) => [r, s.skipped[r]]));
  return { lines: s.lines, queries: s.queries, responses: s.responses, skippedByReason };
}

/** The input's bytes as text: gunzipped when it starts with gzip's magic (1f 8b), whatever its name. */
async function* textChunks(raw: Readable): AsyncGenerator<Buffer> {
  const it: AsyncIterator<Buffer> = raw[Symbol.asyncIterator]();
  try {
    const first = await it.next();
    if (first.done) return;
    const head = first.value;
    async function* all() {
      yield head;
      for (let n = await it.next(); !n.done; n = await it.next()) yield n.value;
    }
    if (head.length < 2 || head[0] !== 0x1f || head[1] !== 0x8b) {
      yield* all();
      return;
    }
    const gunzip = zlib.createGunzip({ chunkSize: CHUNK_BYTES });
    // Errors destroy gunzip, which ends the loop below with them.
    pipeline(Readable.from(all()), gunzip, () => undefined);
    for await (const chunk of gunzip) yield chunk as Buffer;
  } finally {
    raw.destroy();
  }
}

/** Refuses what is not tcpdump text, by its first bytes (after gunzip), as uploads are. */
function checkText(head: Buffer, label: string): void {
  const kind = sniff(head.subarray(0, 4096));
  if (kind === 'pcap' || kind === 'pcapng') {
    throw new CliFailure(`${label} is a binary ${kind} capture, not tcpdump text; convert it first: ${CONVERT_HINT}`);
  }
  if (kind !== 'text') throw new CliFailure(`${label} is not text; expected the output of tcpdump -tt -n (plain or gzip-compressed).`);
}

function readFailure(e: unknown, label: string): Error {
  if (e instanceof CliFailure) return e;
  const code = (e as NodeJS.ErrnoException).code ?? '';
  if (code.startsWith('Z_')) return new CliFailure(`${label} starts like gzip but does not decompress (${(e as Error).message}).`);
  if (code) return new CliFailure(`cannot read ${label}: ${(e as Error).message}`);
  return e as Error;
}

async function parseCommand(file: string, internal: string[], json: boolean, io: Io, dns: boolean): Promise<number> {
  let classifier: DirectionClassifier;
  try {
    classifier = createDirectionClassifier(internal);
  } catch (e) {
    throw new UsageError(`--internal: ${(e as Error).message}`);
  }
  const label = file === '-' ? 'stdin' : file;
  let size: number | null = null;
  if (file !== '-') {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(file);
    } catch {
      throw new UsageError(`cannot read ${file}`);
    }
    if (stat.isDirectory()) throw new UsageError(`${file} is a directory`);
    size = stat.size;
  }
  const input = file === '-' ? (io.stdin as Readable) : fs.createReadStream(file, { highWaterMark: CHUNK_BYTES });
  // A file's progress is the bytes read from it (gzip: compressed) against its size; stdin's, the text so far.
  const progress = new ProgressBar(io.stderr, { label: path.basename(label), total: size });
  const readSoFar = input instanceof fs.ReadStream ? () => input.bytesRead : null;
  let textSoFar = 0;
  try {
    const onChunk = (chunk: Buffer) => progress.update(readSoFar ? readSoFar() : (textSoFar += chunk.length));
    return await parseStream(input, label, classifier, io, progress, json, onChunk, dns);
  } finally {
    progress.finish();
  }
}

async function parseStream(
  input: Readable,
  label: string,
  classifier: DirectionClassifier,
  io: Io,
  progress: ProgressBar,
  json: boolean,
  onChunk: (chunk: Buffer) => void,
  dns: boolean,
): Promise<number> {
  const parser = new TcpdumpParser({ dns });
  const batch = new PacketBatch(1 << 14);
  const writer = new RowWriter(io.stdout);
  writer.pos = writer.buf.write(dns ? DNS_HEADER : PARSE_HEADER, 0, 'latin1');
  const render = dns ? () => renderDnsRows(batch, parser.takeDnsRows(), writer) : () => renderRows(batch, classifier, writer);
  // A capture without -tt is refused once its first lines show it, as the upload worker does. Its rows
  // (fewer than its time-of-day lines) are still in the writer's first chunk then: none are printed.
  let decided = false;
  /** The first lines showed a file without -tt: refused at the next chunk (counting the lines read) or at the end. */
  let refusing = false;
  const refuseWithoutEpoch = (partial: boolean) => {
    const noEpoch = missingEpochTimestamps(parser.stats, partial);
    if (noEpoch) {
      writer.discard();
      throw new CliFailure(`${label}: ${noEpoch.message}`);
    }
  };
  let first = true;
  try {
    for await (const chunk of textChunks(input)) {
      if (refusing) refuseWithoutEpoch(true);
      if (first) {
        first = false;
        checkText(chunk, label);
      }
      batch.clear();
      parser.push(chunk, batch);
      render();
      onChunk(chunk);
      if (!decided && parser.stats.lines > EPOCH_DECISION_LINES) {
        decided = true;
        // Not drained: its rows stay unprinted until the next chunk or the end decides.
        if (missingEpochTimestamps(parser.stats)) {
          refusing = true;
          continue;
        }
      }
      await writer.drain();
      if (writer.closed) return 0;
    }
  } catch (e) {
    throw readFailure(e, label);
  }
  batch.clear();
  parser.end(batch);
  render();
  refuseWithoutEpoch(false);
  await writer.drain(true);
  if (writer.closed) return 0;
  const { stats } = parser;
  const reasons = SKIP_REASONS.filter((r) => stats.skipped[r] > 0);
  const skipped = reasons.reduce((sum, r) => sum + stats.skipped[r], 0);
  progress.finish();
  if (json) {
    // stdout carries the rows: the summary goes to stderr, as one JSON line.
    const samples = [...stats.samples].sort((a, b) => a.lineNo - b.lineNo).map((s) => ({ lineNumber: s.lineNo, reason: s.reason, text: s.text }));
    io.err(
      JSON.stringify({
        file: label,
        lines: stats.lines,
        packets: stats.packets,
        ...(dns ? { dns: dnsSummary(parser.dnsStats) } : {}),
        skipped,
        skippedByReason: Object.fromEntries(reasons.map((r) => [r, stats.skipped[r]])),
        samples,
      }),
    );
    return 0;
  }
  const byReason = reasons.length ? ` (${reasons.map((r) => `${r} ${stats.skipped[r]}`).join(', ')})` : '';
  io.err(`${label}: ${stats.lines} lines, ${stats.packets} packets, ${skipped} skipped${byReason}`);
  if (dns) {
    const d = dnsSummary(parser.dnsStats);
    const dnsReasons = Object.entries(d.skippedByReason).map(([r, n]) => `${r} ${n}`);
    io.err(
      `  dns: ${d.lines} lines on port 53/5353, ${d.queries} queries, ${d.responses} responses${dnsReasons.length ? `, skipped: ${dnsReasons.join(', ')}` : ''}`,
    );
  }
  for (const s of [...stats.samples].sort((a, b) => a.lineNo - b.lineNo)) io.err(`  line ${s.lineNo}: ${s.reason}: ${s.text}`);
  return 0;
}
