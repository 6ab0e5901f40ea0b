import crypto from 'node:crypto';
import fs from 'node:fs';
import { ProgressBar } from '../common/progress/progress-bar';
import { CliFailure } from './shared';

export const DEFAULT_URL = 'http://localhost:4000/graphql';

/** What --wait follows and prints; the mutation asks for it too, so a duplicate already processed needs no poll. */
export const STATUS_FIELDS =
  'id status error progressPercent lineCount packetLines skippedLines connections inboundConnections outboundConnections hits firstCaptureAt lastCaptureAt';

const STATUS_QUERY = `query LogUploadStatus($id: ID!) {
  logUpload(id: $id) {
    ${STATUS_FIELDS}
  }
}`;

export interface UploadView {
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

/** Why fetch failed, in the words of the socket (ECONNREFUSED, ENOTFOUND...) rather than "fetch failed". */
function fetchFailure(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  if ((e as Error).name === 'TimeoutError') return 'no answer in time';
  return cause?.code ?? cause?.message ?? (e as Error).message;
}

/** POSTs one GraphQL request; every failure but userErrors becomes a CliFailure with the server's words. */
export async function postGraphql<T>(url: string, key: string, body: FormData | string | StreamedBody, timeoutMs?: number): Promise<T> {
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
    res = await fetch(
      url,
      streamed
        ? { method: 'POST', headers, body: streamed.stream, duplex: 'half', signal }
        : { method: 'POST', headers, body: body as FormData | string, signal },
    );
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
        'Rotate captures more often (tcpdump -G) or filter them (the limit counts the text after gunzip, and the bytes sent).',
    );
  }
  if (res.status === 401) throw new CliFailure(`the server refused the API key (HTTP 401)${messages ? `: ${messages}` : ''}`);
  if (res.status === 404) throw new CliFailure(`${url} answered HTTP 404; give the server's GraphQL endpoint (${DEFAULT_URL} by default).`);
  if (messages) throw new CliFailure(`${res.ok ? '' : `HTTP ${res.status}: `}${messages}`);
  if (!res.ok || !json?.data) throw new CliFailure(`unexpected answer from ${url} (HTTP ${res.status}): ${text.slice(0, 200)}`);
  return json.data;
}

/** One query or mutation as JSON, with its variables. */
export function requestGraphql<T>(target: { url: string; key: string }, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  return postGraphql<T>(target.url, target.key, JSON.stringify({ query, variables }), 60_000);
}

/** A connection as the CLI reads it. */
export interface Page<T> {
  edges: Array<{ node: T }>;
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

export interface UserErrorView {
  code: string;
  field: string[] | null;
  message: string;
}

/** A payload's userErrors as one line: "CODE (field): message; ...". */
export function userErrorText(errors: UserErrorView[]): string {
  return errors.map((e) => `${e.code}${e.field?.length ? ` (${e.field.join('.')})` : ''}: ${e.message}`).join('; ');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A request body handed to fetch a slice at a time, so a progress bar can follow what the socket took. */
export interface StreamedBody {
  contentType: string;
  length: number;
  stream: ReadableStream<Uint8Array>;
}

const SLICE_BYTES = 64 * 1024;

/** A file's content: in memory, or on disk (read a slice at a time as the socket takes it, never whole). */
export type FileContent = { bytes: Buffer } | { path: string; size: number };

function* fileSlices(content: FileContent): Generator<Buffer> {
  if ('bytes' in content) {
    for (let o = 0; o < content.bytes.length; o += SLICE_BYTES) yield content.bytes.subarray(o, o + SLICE_BYTES);
    return;
  }
  const fd = fs.openSync(content.path, 'r');
  try {
    for (let o = 0; o < content.size;) {
      const slice = Buffer.alloc(Math.min(SLICE_BYTES, content.size - o));
      const n = fs.readSync(fd, slice, 0, slice.length, o);
      // The length was announced in Content-Length: a file that shrank while it was sent cannot be sent.
      if (n === 0) throw new CliFailure(`${content.path} became shorter while it was sent`);
      o += n;
      yield slice.subarray(0, n);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** multipart/form-data with text fields and one file, as FormData would send it, but streamed with a byte count. */
export function multipartBody(
  fields: Array<[string, string]>,
  file: { field: string; name: string; type: string } & FileContent,
  onSent: (bytes: number) => void,
): StreamedBody {
  const boundary = `----pcap-defense-${crypto.randomBytes(12).toString('hex')}`;
  const quote = (v: string) => v.replace(/["\r\n\\]/g, (c) => encodeURIComponent(c));
  const parts: Buffer[] = fields.map(([name, value]) =>
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${quote(name)}"\r\n\r\n${value}\r\n`),
  );
  parts.push(
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="${quote(file.field)}"; filename="${quote(file.name)}"\r\nContent-Type: ${file.type}\r\n\r\n`,
    ),
  );
  const end = Buffer.from(`\r\n--${boundary}--\r\n`);
  const slices = (function* () {
    for (const p of parts) yield* fileSlices({ bytes: p });
    yield* fileSlices(file);
    yield end;
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
  const fileLength = 'bytes' in file ? file.bytes.length : file.size;
  return { contentType: `multipart/form-data; boundary=${boundary}`, length: parts.reduce((n, p) => n + p.length, 0) + fileLength + end.length, stream };
}

/**
 * A GraphQL multipart request (operations, map, one file as part "0"). With an active bar (stderr is a
 * terminal) the body is streamed so the bar follows the bytes sent; otherwise plain FormData.
 */
export async function postFileGraphql<T>(
  target: { url: string; key: string },
  operations: string,
  map: string,
  file: { name: string; type: string } & FileContent,
  progress: ProgressBar,
): Promise<T> {
  if (!progress.active) {
    const form = new FormData();
    form.append('operations', operations);
    form.append('map', map);
    form.append('0', 'bytes' in file ? new Blob([file.bytes], { type: file.type }) : await fs.openAsBlob(file.path, { type: file.type }), file.name);
    return postGraphql<T>(target.url, target.key, form);
  }
  const body = multipartBody(
    [
      ['operations', operations],
      ['map', map],
    ],
    { field: '0', ...file },
    (n) => progress.update(n, body.length),
  );
  try {
    return await postGraphql<T>(target.url, target.key, body);
  } finally {
    progress.finish();
  }
}

export const isFinished = (u: UploadView) => u.status === 'COMPLETED' || u.status === 'FAILED';

/**
 * Polls the upload until a worker has finished with it. An UPLOADER key sees only its own uploads, so a
 * duplicate of a file another key sent is followed by sending the file again (`again`): the server answers
 * with the earlier upload each time and stores nothing.
 */
export async function waitForUpload(
  url: string,
  key: string,
  id: string,
  timeoutS: number,
  progress: ProgressBar,
  again?: () => Promise<UploadView | null>,
): Promise<UploadView> {
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
