import 'reflect-metadata';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline, Readable } from 'node:stream';
import zlib from 'node:zlib';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { DataSource } from 'typeorm';
import { ConfigError, loadConfig } from './config/config';
import { createDataSource, detectFlavor } from './db/data-source';
import { migrate } from './db/migrate';
import { createServices, Services } from './app/services';
import { Role } from './modules/account/account.enums';
import { toGlobalId } from './common/ids/global-id';
import { ImportMode, IocCategory, IocListKind } from './modules/ioc/ioc.enums';
import { IocList } from './modules/ioc/ioc-list.entity';
import { createDirectionClassifier, Direction, DirectionClassifier } from './modules/log-upload/flows/direction';
import { ipv6Text, missingEpochTimestamps, PacketBatch, Protocol, SKIP_REASONS, TcpdumpParser } from './modules/log-upload/parsing';
import { CONVERT_HINT, sniff } from './modules/log-upload/acceptance/sniff';
import { ProgressBar } from './common/progress/progress-bar';
import { Metrics } from './app/metrics';

/** Thrown for wrong usage; printed without a stack, exit code 2. */
class UsageError extends Error {}

/** Thrown when the command was used right but did not succeed (server refused, file unusable); exit code 1. */
class CliFailure extends Error {}

/** Where a run reads and writes; tests pass their own streams and environment. */
export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream;
  /** Only PCAP_DEFENSE_KEY and PCAP_DEFENSE_URL are read from it (database settings go through loadConfig). */
  env: Record<string, string | undefined>;
}

interface Io extends CliIo {
  out(line: string): void;
  err(line: string): void;
}

interface Command {
  summary: string;
  usage: string;
  run(argv: string[], io: Io): Promise<number>;
}

/** Opens the configured database (running migrations, as the server does) for one command. */
async function withServices<T>(work: (services: Services) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const dataSource: DataSource = createDataSource(await detectFlavor(config.database));
  await dataSource.initialize();
  try {
    // Under the same lock as the server's: a command run while servers start must not migrate alongside them.
    await migrate(dataSource);
    // A registry of its own without process collectors: a command is not scraped.
    return await work(createServices(dataSource, config, { metrics: new Metrics() }));
  } finally {
    await dataSource.destroy();
  }
}

function parseRole(value: string | undefined): Role {
  const role = (value ?? '').toUpperCase() as Role;
  if (!Object.values(Role).includes(role)) throw new UsageError(`--role must be one of ${Object.values(Role).join(', ')}`);
  return role;
}

async function accountByName(services: Services, name: string | undefined) {
  const wanted = name ?? services.config.defaultAccountName;
  const account = await services.accounts.findAccountByName(wanted);
  if (!account) throw new UsageError(`No account named "${wanted}".`);
  return account;
}

function enumValue<T extends string>(values: Record<string, T>, raw: string | undefined, flag: string, fallback: T): T {
  if (raw === undefined) return fallback;
  const v = raw.toUpperCase() as T;
  if (!Object.values(values).includes(v)) throw new UsageError(`${flag} must be one of ${Object.values(values).join(', ')}`);
  return v;
}

// --- backup -----------------------------------------------------------------------------------------

/**
 * SQLite's online backup API on a connection of its own: the copy is one snapshot (taken in a single step, a
 * read transaction that writers in WAL mode do not wait for), written beside FILE and renamed into place only
 * once checked, so FILE is never half a database. No migrations run: a backup changes nothing.
 */
async function backupCommand(file: string, json: boolean, io: Io): Promise<number> {
  const config = loadConfig();
  if (config.database.type !== 'sqlite') {
    throw new CliFailure(
      'backup copies the embedded SQLite database. For MySQL/MariaDB dump it consistently while the server runs: ' +
        'mariadb-dump --single-transaction DATABASE > FILE (or mysqldump --single-transaction); restore with mariadb DATABASE < FILE.',
    );
  }
  const source = config.database.file;
  if (source === ':memory:' || !fs.existsSync(source)) throw new CliFailure(`no database at ${source} (DATA_DIR).`);
  if (fs.existsSync(file)) throw new CliFailure(`${file} exists; give a new file name (a backup never overwrites).`);
  if (!fs.existsSync(path.dirname(file))) throw new CliFailure(`the directory ${path.dirname(file)} does not exist.`);
  const started = performance.now();
  const partial = `${file}.partial-${process.pid}`;
  const db = new Database(source, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    // All remaining pages in one step: one snapshot, not a copy restarted every time the server commits.
    await db.backup(partial, { progress: () => 0x7fffffff });
  } catch (e) {
    fs.rmSync(partial, { force: true });
    throw new CliFailure(`backup failed: ${(e as Error).message}`);
  } finally {
    db.close();
  }
  let summary: { uploads: number; flowHits: number; iocLists: number; iocs: number };
  const copy = new Database(partial, { fileMustExist: true });
  try {
    const check = copy.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new CliFailure(`the copy failed its check (${String(check)}); nothing was written to ${file}.`);
    // A single file that needs no -wal beside it.
    copy.pragma('journal_mode = DELETE');
    const count = (table: string) => Number(copy.prepare(`SELECT COUNT(*) AS n FROM ${table}`).pluck().get());
    summary = { uploads: count('log_upload'), flowHits: count('flow_hit'), iocLists: count('ioc_list'), iocs: count('ioc') };
  } catch (e) {
    copy.close();
    fs.rmSync(partial, { force: true });
    throw e instanceof CliFailure ? e : new CliFailure(`the copy could not be read back: ${(e as Error).message}`);
  }
  copy.close();
  fs.renameSync(partial, file);
  const bytes = fs.statSync(file).size;
  const durationMs = Math.round(performance.now() - started);
  if (json) io.out(JSON.stringify({ file, bytes, ...summary, durationMs }));
  else io.out(`Backed up ${source} to ${file}: ${bytes} bytes, ${summary.uploads} uploads, ${summary.flowHits} flow hits, ${summary.iocLists} IOC lists (${durationMs} ms).`);
  return 0;
}

// --- parse ------------------------------------------------------------------------------------------

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

async function parseCommand(file: string, internal: string[], json: boolean, io: Io): Promise<number> {
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
    return await parseStream(input, label, classifier, io, progress, json, (chunk) => progress.update(readSoFar ? readSoFar() : (textSoFar += chunk.length)));
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
): Promise<number> {
  const parser = new TcpdumpParser();
  const batch = new PacketBatch(1 << 14);
  const writer = new RowWriter(io.stdout);
  writer.pos = writer.buf.write(PARSE_HEADER, 0, 'latin1');
  // A capture without -tt is refused once its first lines show it, as the upload worker does. Its rows
  // (fewer than its time-of-day lines) are still in the writer's first chunk then: none are printed.
  let decided = false;
  const refuseWithoutEpoch = () => {
    const noEpoch = missingEpochTimestamps(parser.stats);
    if (noEpoch) {
      writer.discard();
      throw new CliFailure(`${label}: ${noEpoch.message}`);
    }
  };
  let first = true;
  try {
    for await (const chunk of textChunks(input)) {
      if (first) {
        first = false;
        checkText(chunk, label);
      }
      batch.clear();
      parser.push(chunk, batch);
      renderRows(batch, classifier, writer);
      onChunk(chunk);
      if (!decided && parser.stats.lines > EPOCH_DECISION_LINES) {
        refuseWithoutEpoch();
        decided = true;
      }
      await writer.drain();
      if (writer.closed) return 0;
    }
  } catch (e) {
    throw readFailure(e, label);
  }
  batch.clear();
  parser.end(batch);
  renderRows(batch, classifier, writer);
  refuseWithoutEpoch();
  await writer.drain(true);
  if (writer.closed) return 0;
  const { stats } = parser;
  const reasons = SKIP_REASONS.filter((r) => stats.skipped[r] > 0);
  const skipped = reasons.reduce((sum, r) => sum + stats.skipped[r], 0);
  progress.finish();
  if (json) {
    // stdout carries the rows: the summary goes to stderr, as one JSON line.
    const samples = [...stats.samples].sort((a, b) => a.lineNo - b.lineNo).map((s) => ({ lineNumber: s.lineNo, reason: s.reason, text: s.text }));
    io.err(JSON.stringify({ file: label, lines: stats.lines, packets: stats.packets, skipped, skippedByReason: Object.fromEntries(reasons.map((r) => [r, stats.skipped[r]])), samples }));
    return 0;
  }
  const byReason = reasons.length ? ` (${reasons.map((r) => `${r} ${stats.skipped[r]}`).join(', ')})` : '';
  io.err(`${label}: ${stats.lines} lines, ${stats.packets} packets, ${skipped} skipped${byReason}`);
  for (const s of [...stats.samples].sort((a, b) => a.lineNo - b.lineNo)) io.err(`  line ${s.lineNo}: ${s.reason}: ${s.text}`);
  return 0;
}

// --- upload -----------------------------------------------------------------------------------------

const DEFAULT_URL = 'http://localhost:4000/graphql';
const WAIT_TIMEOUT_S = 120;

/** What --wait follows and prints; the mutation asks for it too, so a duplicate already processed needs no poll. */
const STATUS_FIELDS = 'id status error progressPercent lineCount packetLines skippedLines connections inboundConnections outboundConnections hits firstCaptureAt lastCaptureAt';

const UPLOAD_MUTATION = `mutation LogUploadCreate($input: LogUploadCreateInput!) {
  logUploadCreate(input: $input) {
    logUpload { ${STATUS_FIELDS} fileName size md5 receivedAt device { id nickname } }
    duplicate
    warnings { code message }
    userErrors { code field message }
  }
}`;

const STATUS_QUERY = `query LogUploadStatus($id: ID!) {
  logUpload(id: $id) {
    ${STATUS_FIELDS}
  }
}`;

interface UploadView {
  id: string;
  status: string;
  error?: string | null;
  lineCount?: number;
  packetLines?: number;
  skippedLines?: number;
  connections?: number;
  inboundConnections?: number;
  outboundConnections?: number;
  hits?: number;
  [field: string]: unknown;
}

interface CreatePayload {
  logUpload: UploadView | null;
  duplicate: boolean;
  warnings?: Array<{ code: string; message: string }>;
  userErrors: Array<{ code: string; field: string[] | null; message: string }>;
}

/** Why fetch failed, in the words of the socket (ECONNREFUSED, ENOTFOUND...) rather than "fetch failed". */
function fetchFailure(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  if ((e as Error).name === 'TimeoutError') return 'no answer in time';
  return cause?.code ?? cause?.message ?? (e as Error).message;
}

/** POSTs one GraphQL request; every failure but userErrors becomes a CliFailure with the server's words. */
async function postGraphql<T>(url: string, key: string, body: FormData | string | StreamedBody, timeoutMs?: number): Promise<T> {
  const headers: Record<string, string> = {
    authorization: `Bearer ${key}`,
    // Apollo's CSRF prevention refuses multipart requests without it.
    'apollo-require-preflight': 'true',
    'user-agent': 'pcap-defense-cli',
  };
  if (typeof body === 'string') headers['content-type'] = 'application/json';
  const streamed = typeof body === 'object' && 'stream' in body ? body : null;
  if (streamed) {
    headers['content-type'] = streamed.contentType;
    headers['content-length'] = String(streamed.length);
  }
  let res: Response;
  let text: string;
  try {
    const signal = timeoutMs ? AbortSignal.timeout(timeoutMs) : undefined;
    res = await fetch(url, streamed ? { method: 'POST', headers, body: streamed.stream, duplex: 'half', signal } : { method: 'POST', headers, body: body as FormData | string, signal });
    text = await res.text();
  } catch (e) {
    throw new CliFailure(`cannot reach the server at ${url}: ${fetchFailure(e)}`);
  }
  let json: { data?: T; errors?: Array<{ message: string; extensions?: { code?: string } }>; error?: string } | null = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  const messages = json?.errors?.length ? json.errors.map((e) => e.message).join('; ') : (json?.error ?? null);
  if (res.status === 413) {
    throw new CliFailure(
      `${messages ?? 'The file is larger than the server accepts (HTTP 413); nothing was stored.'} ` +
        'Rotate captures more often (tcpdump -G) or filter them (the limit counts the text after gunzip).',
    );
  }
  if (res.status === 401) throw new CliFailure(`the server refused the API key (HTTP 401)${messages ? `: ${messages}` : ''}`);
  if (res.status === 404) throw new CliFailure(`${url} answered HTTP 404; give the server's GraphQL endpoint (${DEFAULT_URL} by default).`);
  if (messages) throw new CliFailure(`${res.ok ? '' : `HTTP ${res.status}: `}${messages}`);
  if (!res.ok || !json?.data) throw new CliFailure(`unexpected answer from ${url} (HTTP ${res.status}): ${text.slice(0, 200)}`);
  return json.data;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A request body handed to fetch a slice at a time, so a progress bar can follow what the socket took. */
interface StreamedBody {
  contentType: string;
  length: number;
  stream: ReadableStream<Uint8Array>;
}

const SLICE_BYTES = 64 * 1024;

/** multipart/form-data with text fields and one file, as FormData would send it, but streamed with a byte count. */
function multipartBody(fields: Array<[string, string]>, file: { field: string; name: string; type: string; bytes: Buffer }, onSent: (bytes: number) => void): StreamedBody {
  const boundary = `----pcap-defense-${crypto.randomBytes(12).toString('hex')}`;
  const quote = (v: string) => v.replace(/["\r\n\\]/g, (c) => encodeURIComponent(c));
  const parts: Buffer[] = fields.map(([name, value]) => Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${quote(name)}"\r\n\r\n${value}\r\n`));
  parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${quote(file.field)}"; filename="${quote(file.name)}"\r\nContent-Type: ${file.type}\r\n\r\n`));
  parts.push(file.bytes, Buffer.from(`\r\n--${boundary}--\r\n`));
  const slices = (function* () {
    for (const p of parts) for (let o = 0; o < p.length; o += SLICE_BYTES) yield p.subarray(o, o + SLICE_BYTES);
  })();
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = slices.next();
      if (next.done) return controller.close();
      sent += next.value.length;
      onSent(sent);
      controller.enqueue(next.value);
    },
  });
  return { contentType: `multipart/form-data; boundary=${boundary}`, length: parts.reduce((n, p) => n + p.length, 0), stream };
}

const isFinished = (u: UploadView) => u.status === 'COMPLETED' || u.status === 'FAILED';

/**
 * Polls the upload until a worker has finished with it. An UPLOADER key sees only its own uploads, so a
 * duplicate of a file another key sent is followed by sending the file again (`again`): the server answers
 * with the earlier upload each time and stores nothing.
 */
async function waitForUpload(url: string, key: string, id: string, timeoutS: number, progress: ProgressBar, again?: () => Promise<UploadView | null>): Promise<UploadView> {
  const deadline = Date.now() + timeoutS * 1000;
  const body = JSON.stringify({ query: STATUS_QUERY, variables: { id } });
  for (let delay = 100; ; delay = Math.min(2000, Math.round(delay * 1.5))) {
    let { logUpload } = await postGraphql<{ logUpload: UploadView | null }>(url, key, body, 30_000);
    if (!logUpload && again) logUpload = await again();
    if (!logUpload) throw new CliFailure(`upload ${id} is not visible to this key any more.`);
    progress.update(Number(logUpload.progressPercent ?? 0));
    if (isFinished(logUpload)) return logUpload;
    if (Date.now() + delay > deadline) {
      throw new CliFailure(`upload ${id} is still ${logUpload.status} after ${timeoutS} s; ask again later with logUpload(id: "${id}") { status }.`);
    }
    await sleep(delay);
  }
}

interface UploadOptions {
  device?: string;
  nickname?: string;
  ip?: string;
  url?: string;
  key?: string;
  json?: boolean;
  wait?: boolean;
  timeout?: string;
}

async function uploadCommand(file: string, values: UploadOptions, io: Io): Promise<number> {
  const selectors = [values.device, values.nickname, values.ip].filter((v) => v !== undefined);
  if (selectors.length !== 1) throw new UsageError('name the device by exactly one of --device ID, --nickname NAME or --ip ADDR');
  const key = values.key ?? io.env.PCAP_DEFENSE_KEY;
  if (!key) throw new UsageError('give --key KEY or set PCAP_DEFENSE_KEY (an UPLOADER or ADMIN API key)');
  const url = values.url ?? io.env.PCAP_DEFENSE_URL ?? DEFAULT_URL;
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    protocol = '';
  }
  if (protocol !== 'http:' && protocol !== 'https:') throw new UsageError(`--url must be an http(s) URL such as ${DEFAULT_URL}`);
  const timeoutS = values.timeout === undefined ? WAIT_TIMEOUT_S : Number(values.timeout);
  if (!(timeoutS > 0)) throw new UsageError('--timeout must be a number of seconds');

  let bytes: Buffer;
  try {
    bytes = await fs.promises.readFile(file);
  } catch (e) {
    throw new UsageError(`cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  // The server checks both against what arrived: a proxy that cut or altered the file is caught.
  const input = {
    device: values.device,
    deviceNickname: values.nickname,
    deviceIp: values.ip,
    file: null,
    md5: crypto.createHash('md5').update(bytes).digest('hex'),
    size: bytes.length,
  };
  const gzipped = bytes[0] === 0x1f && bytes[1] === 0x8b;
  const operations = JSON.stringify({ query: UPLOAD_MUTATION, variables: { input } });
  const map = JSON.stringify({ 0: ['variables.input.file'] });
  const type = gzipped ? 'application/gzip' : 'text/plain';
  let payload: CreatePayload;
  const sending = new ProgressBar(io.stderr, { label: path.basename(file), total: null });
  const plainForm = () => {
    const form = new FormData();
    form.append('operations', operations);
    form.append('map', map);
    form.append('0', new Blob([bytes], { type }), path.basename(file));
    return form;
  };
  if (sending.active) {
    // On a terminal the body is streamed so the bar follows the bytes sent; scripts get plain FormData.
    const body = multipartBody([['operations', operations], ['map', map]], { field: '0', name: path.basename(file), type, bytes }, (n) => sending.update(n, body.length));
    try {
      ({ logUploadCreate: payload } = await postGraphql<{ logUploadCreate: CreatePayload }>(url, key, body));
    } finally {
      sending.finish();
    }
  } else {
    ({ logUploadCreate: payload } = await postGraphql<{ logUploadCreate: CreatePayload }>(url, key, plainForm()));
  }

  if (payload.userErrors.length || !payload.logUpload) {
    if (values.json) io.out(JSON.stringify(payload));
    for (const e of payload.userErrors) io.err(`pcap-defense upload: ${e.code}${e.field ? ` (${e.field.join('.')})` : ''}: ${e.message}`);
    return 1;
  }
  const created = payload.logUpload;
  if (!values.json) for (const w of payload.warnings ?? []) io.err(`pcap-defense upload: warning: ${w.code}: ${w.message}`);
  if (!values.wait) {
    if (values.json) io.out(JSON.stringify(payload));
    else io.out(`id: ${created.id}\nstatus: ${created.status}\nduplicate: ${payload.duplicate}`);
    return 0;
  }
  if (!values.json) io.out(`id: ${created.id}\nduplicate: ${payload.duplicate}`);
  const processing = new ProgressBar(io.stderr, { label: 'processing', total: 100, unit: 'percent' });
  // A duplicate is a success: the file is there already. Its status is the earlier upload's, which this key
  // may not be allowed to query (another UPLOADER key sent it): then it asks by sending the file again.
  const again = payload.duplicate
    ? async () => (await postGraphql<{ logUploadCreate: CreatePayload }>(url, key, plainForm())).logUploadCreate.logUpload
    : undefined;
  let done: UploadView;
  try {
    done = isFinished(created) ? created : await waitForUpload(url, key, created.id, timeoutS, processing, again);
  } finally {
    processing.finish();
  }
  if (values.json) {
    io.out(JSON.stringify({ ...payload, logUpload: { ...created, ...done } }));
  } else {
    io.out(
      `status: ${done.status}\n` +
        `lines: ${done.lineCount} (packets ${done.packetLines}, skipped ${done.skippedLines})\n` +
        `connections: ${done.connections} (inbound ${done.inboundConnections}, outbound ${done.outboundConnections})\n` +
        `hits: ${done.hits}`,
    );
  }
  if (done.status === 'FAILED') {
    io.err(`pcap-defense upload: processing failed: ${done.error ?? 'no reason given'}`);
    return 1;
  }
  return 0;
}

const commands: Record<string, Command> = {
  parse: {
    summary: 'Parse tcpdump -tt -n text (plain or gzip) into tab-separated rows on stdout; a summary with skipped lines on stderr.',
    usage: 'parse FILE|- [--internal CIDR,...] [--json]',
    async run(argv, io) {
      const { values, positionals } = parseArgs({
        args: argv,
        allowPositionals: true,
        options: { internal: { type: 'string', multiple: true }, json: { type: 'boolean' } },
      });
      if (positionals.length !== 1) throw new UsageError('give exactly one FILE (or - for stdin)');
      const internal = (values.internal ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
      return parseCommand(positionals[0], internal, values.json === true, io);
    },
  },
  upload: {
    summary: 'Upload a tcpdump text file (plain or gzip) to a server by the logUploadCreate mutation; --wait until it is processed.',
    usage: 'upload FILE (--device ID | --nickname NAME | --ip ADDR) [--url URL] [--key KEY] [--wait [--timeout SECONDS]] [--json]',
    async run(argv, io) {
      const { values, positionals } = parseArgs({
        args: argv,
        allowPositionals: true,
        options: {
          device: { type: 'string' },
          nickname: { type: 'string' },
          ip: { type: 'string' },
          url: { type: 'string' },
          key: { type: 'string' },
          json: { type: 'boolean' },
          wait: { type: 'boolean' },
          timeout: { type: 'string' },
        },
      });
      if (positionals.length !== 1) throw new UsageError('give exactly one FILE');
      return uploadCommand(positionals[0], values, io);
    },
  },
  'ioc import': {
    summary: 'Import a feed file into an IOC list (created when --create is given and it does not exist).',
    usage:
      'ioc import FILE --list NAME [--mode APPEND|REPLACE] [--create --kind BLOCK|ALLOW --severity 0-5 --category CATEGORY --source NAME] [--account NAME] [--json]',
    async run(argv, io) {
      const { values, positionals } = parseArgs({
        args: argv,
        allowPositionals: true,
        options: {
          list: { type: 'string' },
          mode: { type: 'string' },
          create: { type: 'boolean' },
          kind: { type: 'string' },
          severity: { type: 'string' },
          category: { type: 'string' },
          source: { type: 'string' },
          account: { type: 'string' },
          json: { type: 'boolean' },
        },
      });
      if (positionals.length !== 1) throw new UsageError('give exactly one FILE');
      if (!values.list) throw new UsageError('--list NAME is required');
      const file = positionals[0];
      let stat: fs.Stats;
      try {
        stat = fs.statSync(file);
      } catch {
        throw new UsageError(`cannot read ${file}`);
      }
      const mode = enumValue(ImportMode, values.mode, '--mode', ImportMode.APPEND);
      return withServices(async (services) => {
        const account = await accountByName(services, values.account);
        let list = await services.dataSource.getRepository(IocList).findOneBy({ accountId: account.id, nameKey: values.list!.trim().toLowerCase() });
        if (!list) {
          if (!values.create) throw new UsageError(`No IOC list named "${values.list}" (add --create to make it).`);
          const created = await services.iocLists.create(account.id, {
            name: values.list,
            kind: enumValue(IocListKind, values.kind, '--kind', IocListKind.BLOCK),
            severity: values.severity === undefined ? 3 : Number(values.severity),
            category: enumValue(IocCategory, values.category, '--category', IocCategory.OTHER),
            sourceName: values.source ?? null,
          });
          if (!created.ok) throw new UsageError(created.errors.map((e) => e.message).join('; '));
          list = created.value;
        }
        const progress = new ProgressBar(io.stderr, { label: path.basename(file), total: stat.size });
        let result;
        try {
          result = await services.feedImport.importFile(account.id, list.id, { path: file, bytes: stat.size }, mode, (_lines, bytes) => progress.update(bytes));
        } finally {
          progress.finish();
        }
        if (!result.ok) throw new UsageError(result.errors.map((e) => e.message).join('; '));
        const r = result.value;
        if (values.json) {
          const { list: after, ...counts } = r;
          io.out(JSON.stringify({ list: { id: toGlobalId('IocList', after.id), name: after.name, entryCount: after.entryCount }, ...counts }));
        } else {
          io.out(
            `${list.name}: ${r.linesRead} lines, ${r.added} added, ${r.duplicates} duplicates, ${r.skipped} skipped` +
              `${r.removed ? `, ${r.removed} replaced` : ''}; ${r.list.entryCount} entries now (${r.durationMs} ms)`,
          );
          for (const s of r.skippedLines.slice(0, 20)) io.err(`  line ${s.lineNumber}: ${s.reason}: ${s.text}`);
        }
        return 0;
      });
    },
  },
  backup: {
    summary: 'Copy the SQLite database to FILE, consistent while the server runs (MySQL/MariaDB: use mariadb-dump or mysqldump --single-transaction).',
    usage: 'backup FILE [--json]',
    async run(argv, io) {
      const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { json: { type: 'boolean' } } });
      if (positionals.length !== 1) throw new UsageError('give exactly one FILE');
      return backupCommand(path.resolve(positionals[0]), values.json === true, io);
    },
  },
  'key create': {
    summary: 'Create an API key and print its secret (shown once).',
    usage: 'key create --role ADMIN|ANALYST|UPLOADER [--name LABEL] [--account NAME [--create-account]] [--json]',
    async run(argv, io) {
      const { values } = parseArgs({
        args: argv,
        options: { role: { type: 'string' }, name: { type: 'string' }, account: { type: 'string' }, 'create-account': { type: 'boolean' }, json: { type: 'boolean' } },
      });
      const role = parseRole(values.role);
      return withServices(async (services) => {
        const accountName = values.account ?? services.config.defaultAccountName;
        let account = await services.accounts.findAccountByName(accountName);
        // A mistyped --account must not quietly become a new, empty account with a working key. Only the
        // default one is made without asking: it is the account the server creates on its first start.
        if (!account && values.account !== undefined && !values['create-account']) {
          const { accounts, total } = await services.accounts.listAccounts(20);
          const names = accounts.map((a) => `"${a.name}"`).join(', ') + (total > accounts.length ? ` and ${total - accounts.length} more` : '');
          throw new UsageError(
            `No account named "${accountName}". ${total ? `The accounts are: ${names}.` : 'There are no accounts yet.'} ` +
              'Give one of them, or add --create-account to create this one.',
          );
        }
        if (!account) {
          const created = await services.accounts.createAccount(accountName);
          if (!created.ok) throw new UsageError(created.errors.map((e) => e.message).join('; '));
          account = created.value;
        }
        const result = await services.accounts.createApiKey(account.id, { name: values.name ?? `CLI ${role.toLowerCase()} key`, role });
        if (!result.ok) throw new UsageError(result.errors.map((e) => e.message).join('; '));
        const { apiKey, secret } = result.value;
        if (values.json) {
          io.out(JSON.stringify({ id: toGlobalId('ApiKey', apiKey.id), account: account.name, name: apiKey.name, role, secret }));
        } else {
          io.err(`Created ${role} key "${apiKey.name}" for account "${account.name}". Store the secret now; it is not shown again.`);
          io.out(secret);
        }
        return 0;
      });
    },
  },
  'key list': {
    summary: 'List the API keys of an account (never their secrets).',
    usage: 'key list [--account NAME] [--json]',
    async run(argv, io) {
      const { values } = parseArgs({ args: argv, options: { account: { type: 'string' }, json: { type: 'boolean' } } });
      return withServices(async (services) => {
        const account = await accountByName(services, values.account);
        const rows = [];
        let after: string | null = null;
        do {
          const page = await services.accounts.listApiKeys(account.id, { first: 100, after });
          rows.push(...page.edges.map((e) => e.node));
          after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
        } while (after);
        const view = rows.map((k) => ({
          id: toGlobalId('ApiKey', k.id),
          name: k.name,
          role: k.role,
          prefix: k.prefix,
          createdAt: k.createdAt.toISOString(),
          lastUsedAt: k.lastUsedAt?.toISOString() ?? null,
          revokedAt: k.revokedAt?.toISOString() ?? null,
        }));
        if (values.json) io.out(JSON.stringify(view));
        else for (const k of view) io.out([k.id, k.role, k.prefix, k.revokedAt ? 'revoked' : 'active', k.name].join('\t'));
        return 0;
      });
    },
  },
  'key revoke': {
    summary: 'Revoke an API key by its ID (from `key list`).',
    usage: 'key revoke ID [--account NAME]',
    async run(argv, io) {
      const { values, positionals } = parseArgs({ args: argv, options: { account: { type: 'string' } }, allowPositionals: true });
      if (positionals.length !== 1) throw new UsageError('give exactly one key ID');
      const { idOfType } = await import('./common/ids/global-id');
      return withServices(async (services) => {
        const account = await accountByName(services, values.account);
        const result = await services.accounts.revokeApiKey(account.id, idOfType(positionals[0], 'ApiKey'));
        if (!result.ok) throw new UsageError(result.errors.map((e) => e.message).join('; '));
        io.err(`Revoked key "${result.value.name}".`);
        return 0;
      });
    },
  },
};

function help(): string {
  const lines = ['Usage: pcap-defense <command> [options]', '', 'Commands:'];
  for (const c of Object.values(commands)) lines.push(`  ${c.usage}`, `      ${c.summary}`);
  lines.push(
    '',
    'key and ioc commands open the database the server uses: DATABASE_URL, or the SQLite file under ./data/.',
    'parse needs no database; upload talks to a server (--url or PCAP_DEFENSE_URL, key by --key or PCAP_DEFENSE_KEY).',
    'parse, upload and ioc import draw a progress bar on stderr when it is a terminal; otherwise only the final summary is printed.',
  );
  return lines.join('\n');
}

/**
 * Runs one command and resolves to its exit code: 0 done, 1 failed (server refused, unusable file),
 * 2 wrong usage. `io` defaults to the process's streams and environment.
 */
export async function runCli(argv: string[], streams: Partial<CliIo> = {}): Promise<number> {
  const stdout = streams.stdout ?? process.stdout;
  const stderr = streams.stderr ?? process.stderr;
  const io: Io = {
    stdout,
    stderr,
    stdin: streams.stdin ?? process.stdin,
    env: streams.env ?? process.env,
    out: (line) => void stdout.write(`${line}\n`),
    err: (line) => void stderr.write(`${line}\n`),
  };
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.out(help());
    return argv.length === 0 ? 2 : 0;
  }
  const two = argv.slice(0, 2).join(' ');
  const name = commands[two] ? two : argv[0];
  const command = commands[name];
  if (!command) {
    io.err(`Unknown command "${argv.slice(0, 2).join(' ')}".\n\n${help()}`);
    return 2;
  }
  try {
    return await command.run(argv.slice(name.split(' ').length), io);
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`pcap-defense ${name}: ${(e as Error).message}\nUsage: pcap-defense ${command.usage}`);
      return 2;
    }
    if (e instanceof CliFailure) {
      io.err(`pcap-defense ${name}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

/** Entry point used by bin/pcap-defense.js. */
export function main(): void {
  runCli(process.argv.slice(2)).then(
    (code) => {
      // Let buffered output to a pipe drain before exiting (process.exit does not wait for it).
      process.exitCode = code;
      if (process.stdout.writableLength === 0 || process.stdout.destroyed) process.exit(code);
      else process.stdout.once('drain', () => process.exit(code)).once('error', () => process.exit(code));
    },
    (e) => {
      process.stderr.write(`pcap-defense: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
