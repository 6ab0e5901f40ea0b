// Fetches a feed over HTTP(S) for a source: conditional request, redirects (bounded), timeout, retries with
// backoff, a size limit on the (decompressed) body, and a guard on where it may connect. No DB, no GraphQL.

import dns from 'node:dns';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { Transform, TransformCallback } from 'node:stream';
import { cidrContains, parseCidr } from '../../common/net/cidr';
import { guardTarget, parseIp } from '../../common/net/ip';

export interface FetchLimits {
  maxBytes: number;
  timeoutMs: number;
  attempts: number;
  retryBaseMs: number;
  allowLinkLocal: boolean;
  allowLoopback: boolean;
  maxRedirects?: number;
  /**
   * When the whole fetch (every attempt, wait and redirect) must be over: the service gives part of the source's
   * lease, so a fetch never outlives it. `ms` is the length it was given, for the message.
   */
  deadline?: { at: number; ms: number };
}

export interface FetchRequest {
  url: string;
  /**
   * Sent as they are (secrets included), only to the origin of `headersFor`; never part of an error message.
   */
  headers: Record<string, string>;
  /** The URL whose origin (scheme, host, port) the headers belong to; `url` when left out. */
  headersFor?: string;
  etag?: string | null;
  lastModified?: string | null;
}

export type FetchResult =
  | { kind: 'notModified'; status: number; bytes: number }
  | {
      kind: 'body';
      status: number;
      /** Bytes received on the wire. */
      bytes: number;
      /** The body, decompressed, spooled to a file the caller removes. */
      file: string;
      etag: string | null;
      lastModified: string | null;
      contentType: string | null;
    };

/** Why a fetch got no feed; `status` is the HTTP status when an answer came. */
export class FeedFetchError extends Error {
  constructor(
    message: string,
    readonly status: number | null = null,
    readonly bytes = 0,
    /** Worth another attempt (network error, timeout, 5xx, 429). */
    readonly transient = false,
  ) {
    super(message);
    this.name = 'FeedFetchError';
  }
}

const cidrs = (list: string[]) => list.map((t) => parseCidr(t, { minPrefixV4: 0, minPrefixV6: 0 })).map((r) => (r.ok ? r.cidr : null)!);
// Link-local (where cloud metadata services live: 169.254.169.254, fd00:ec2::254 on AWS over IPv6) and the
// other providers' metadata addresses.
const LINK_LOCAL = cidrs(['169.254.0.0/16', 'fe80::/10', 'fd00:ec2::254/128', '100.100.100.200/32']);
const LOOPBACK = cidrs(['127.0.0.0/8', '::1/128', '0.0.0.0/8', '::/128']);

/** Why a destination address is refused, or null when it may be reached. */
export function refusedDestination(address: string, limits: Pick<FetchLimits, 'allowLinkLocal' | 'allowLoopback'>): string | null {
  const parsed = parseIp(address);
  if (!parsed) return `"${address}" is not an IP address`;
  // An IPv6 form that carries an IPv4 address (NAT64, 6to4, Teredo, IPv4-mapped...) is judged as that address.
  const target = guardTarget(parsed);
  if (!target.ok) return target.why;
  const { ip, name } = target;
  if (!limits.allowLinkLocal && LINK_LOCAL.some((c) => cidrContains(c, ip))) {
    return `${name} is a link-local or cloud-metadata address (refused unless IOC_SOURCE_ALLOW_LINK_LOCAL=true)`;
  }
  if (!limits.allowLoopback && LOOPBACK.some((c) => cidrContains(c, ip))) {
    return `${name} is a loopback address (refused unless IOC_SOURCE_ALLOW_LOOPBACK=true)`;
  }
  return null;
}

/**
 * Checks a URL before any request: scheme, no credentials in it, a port that can be connected to. The URL
 * parser drops tabs and line breaks anywhere in the text and reads `\\` as `/`, so what would be fetched is not
 * what was typed: a URL with whitespace or control characters is refused, and a source stores the parsed `href`.
 */
export function checkSourceUrl(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'Not a URL.';
  }
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x20\x7f]/.test(text)) return 'A URL may not hold spaces, tabs, line breaks or other control characters.';
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'Only http and https URLs can be fetched.';
  if (url.username || url.password) return 'Put credentials in a header (stored as a secret), not in the URL.';
  if (url.port === '0') return 'Port 0 cannot be fetched.';
  return null;
}

/**
 * Whether a request to `to` may carry the headers of a source at `from` (its secrets): only on the same scheme,
 * host and port, as browsers and curl do with Authorization across redirects. A change of scheme is a change of
 * origin, so headers given for https are never sent over http.
 */
export function mayCarryHeaders(from: URL, to: URL): boolean {
  return from.protocol === to.protocol && from.host === to.host;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

/** dns.lookup that refuses every answer the guard refuses: the checked address is the one connected to. */
function guardedLookup(limits: FetchLimits) {
  return (hostname: string, options: dns.LookupOptions, callback: LookupCallback) => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      for (const a of addresses) {
        const why = refusedDestination(a.address, limits);
        if (why) return callback(Object.assign(new Error(`${hostname} resolves to ${a.address}, and ${why}`), { code: 'EREFUSED_DESTINATION' }), []);
      }
      if (options.all) return callback(null, addresses);
      return callback(null, addresses[0].address, addresses[0].family);
    });
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The whole fetch ran past its deadline: not worth another attempt (the lease would not cover it). */
function pastDeadline(deadline: { ms: number }): FeedFetchError {
  return new FeedFetchError(`The fetch took longer than ${deadline.ms} ms in all, the most its lease allows (IOC_SOURCE_LEASE_MS).`);
}

/**
 * Fetches with retries: transient failures are tried again after retryBaseMs, 2x, 4x, ... Every attempt, wait
 * and redirect ends by `limits.deadline`; a wait that would reach it is not taken (the last failure stands).
 */
export async function fetchFeed(request: FetchRequest, limits: FetchLimits): Promise<FetchResult> {
  for (let attempt = 1; ; attempt++) {
    if (limits.deadline && Date.now() >= limits.deadline.at) throw pastDeadline(limits.deadline);
    try {
      return await fetchOnce(request, limits);
    } catch (err) {
      if (!(err instanceof FeedFetchError) || !err.transient || attempt >= limits.attempts) throw err;
      const wait = limits.retryBaseMs * 2 ** (attempt - 1);
      if (limits.deadline && Date.now() + wait >= limits.deadline.at) throw err;
      await sleep(wait);
    }
  }
}

async function fetchOnce(request: FetchRequest, limits: FetchLimits): Promise<FetchResult> {
  const maxRedirects = limits.maxRedirects ?? 5;
  const seen = new Set<string>();
  const owner = new URL(request.headersFor ?? request.url);
  let url = new URL(request.url);
  for (let hop = 0; ; hop++) {
    const bad = checkSourceUrl(url.href);
    if (bad) throw new FeedFetchError(`${url.href}: ${bad}`);
    if (net.isIP(url.hostname.replace(/^\[|\]$/g, ''))) {
      const why = refusedDestination(url.hostname.replace(/^\[|\]$/g, ''), limits);
      if (why) throw new FeedFetchError(`Refused destination: ${why}.`);
    }
    seen.add(url.href);
    // The source's own headers (its secrets) go to its origin only; a redirect elsewhere gets none of them.
    const answer = await send(url, mayCarryHeaders(owner, url) ? request.headers : {}, request, limits);
    if ([301, 302, 303, 307, 308].includes(answer.status)) {
      answer.response.destroy();
      const location = answer.response.headers.location;
      if (!location) throw new FeedFetchError(`HTTP ${answer.status} without a Location header.`, answer.status);
      const next = new URL(location, url);
      if (seen.has(next.href)) throw new FeedFetchError(`Redirect loop: ${next.href} redirects back to itself.`, answer.status);
      if (hop + 1 > maxRedirects) throw new FeedFetchError(`Too many redirects (more than ${maxRedirects}).`, answer.status);
      url = next;
      continue;
    }
    if (answer.status === 304) {
      answer.response.destroy();
      return { kind: 'notModified', status: 304, bytes: 0 };
    }
    if (answer.status < 200 || answer.status > 299) {
      answer.response.destroy();
      const transient = answer.status >= 500 || answer.status === 429;
      throw new FeedFetchError(`HTTP ${answer.status} ${answer.response.statusMessage ?? ''}`.trim() + '.', answer.status, 0, transient);
    }
    return receive(answer, limits);
  }
}

/** Whether Node's http would send this value (visible ASCII and Latin-1, space and tab). */
export function isHeaderValue(value: string): boolean {
  try {
    http.validateHeaderValue('x', value);
    return true;
  } catch {
    return false;
  }
}

/** Why Node would refuse to send a source's header (it throws from http.request), or null. Never shows the value. */
function unsendableHeader(name: string, value: string): string | null {
  try {
    http.validateHeaderName(name);
  } catch {
    return `The source's header name "${name.slice(0, 100)}" is not a valid HTTP header name: set the headers again.`;
  }
  if (!isHeaderValue(value)) {
    return `The source's header ${name} holds a character HTTP cannot carry (a control or non-Latin-1 character): set the headers again.`;
  }
  return null;
}

interface Answer {
  status: number;
  response: http.IncomingMessage;
  /** The deadline's error once the request has run out of time (the response is destroyed with it). */
  expired(): FeedFetchError | null;
}

/**
 * One request. IOC_SOURCE_TIMEOUT_MS is a deadline for all of it, headers and body (a body that drips a byte a
 * second would never trip an idle timeout), capped by the whole fetch's deadline; on expiry the request is
 * aborted and its socket destroyed.
 */
function send(url: URL, own: Record<string, string>, request: FetchRequest, limits: FetchLimits): Promise<Answer> {
  for (const [name, value] of Object.entries(own)) {
    const why = unsendableHeader(name, value);
    if (why) return Promise.reject(new FeedFetchError(why));
  }
  const headers: Record<string, string> = { 'user-agent': 'pcap-defense ioc-source', 'accept-encoding': 'gzip', ...own };
  // Validators come from the server's answer: one Node would not send is left out (an unconditional request).
  if (request.etag && isHeaderValue(request.etag)) headers['if-none-match'] = request.etag;
  if (request.lastModified && isHeaderValue(request.lastModified)) headers['if-modified-since'] = request.lastModified;
  const client = url.protocol === 'https:' ? https : http;
  const left = limits.deadline ? limits.deadline.at - Date.now() : Infinity;
  const capped = left < limits.timeoutMs;
  return new Promise((resolve, reject) => {
    let expired: FeedFetchError | null = null;
    let response: http.IncomingMessage | null = null;
    // Runs after the request below exists (a timer fires on a later turn at the earliest).
    const timer = setTimeout(
      () => {
        expired = capped
          ? pastDeadline(limits.deadline!)
          : new FeedFetchError(`The request took longer than ${limits.timeoutMs} ms (IOC_SOURCE_TIMEOUT_MS).`, null, 0, true);
        req.destroy(expired);
        response?.destroy(expired);
        fail(expired);
      },
      Math.max(0, Math.min(left, limits.timeoutMs)),
    );
    // Before the answer: the request's end. After it, the timer runs on until the body is read or destroyed.
    const fail = (err: FeedFetchError) => {
      if (response) return;
      clearTimeout(timer);
      reject(err);
    };
    const req = client.request(url, { method: 'GET', headers, lookup: guardedLookup(limits) as never }, (res) => {
      response = res;
      // The deadline destroys it with its error; whoever reads the body (or no one: a redirect) sees that error.
      res.on('error', () => undefined);
      res.on('close', () => clearTimeout(timer));
      resolve({ status: res.statusCode ?? 0, response: res, expired: () => expired });
    });
    // A 101 answer is not given to the response callback: without this the request would wait forever.
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      fail(new FeedFetchError(`${url.host} answered 101 Switching Protocols: not a feed.`, 101));
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof FeedFetchError) return fail(err);
      if (err.code === 'EREFUSED_DESTINATION') return fail(new FeedFetchError(`Refused destination: ${err.message}.`));
      fail(new FeedFetchError(`Could not reach ${url.host}: ${err.code ?? err.message}.`, null, 0, true));
    });
    // Whatever else ends the request without an answer ends the fetch too.
    req.on('close', () => {
      if (!response) fail(new FeedFetchError(`${url.host} closed the connection without an answer.`, null, 0, true));
    });
    req.end();
  });
}

/** Streams the body to a file, inflating gzip (by Content-Encoding or magic bytes), within the size limit. */
async function receive(answer: Answer, limits: FetchLimits): Promise<FetchResult> {
  const { response, status } = answer;
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'pcd-source-'));
  const file = path.join(dir, 'body');
  let wire = 0;
  let out = 0;
  const declared = Number(response.headers['content-length']);
  const tooBig = () => new FeedFetchError(`The feed is larger than the limit of ${limits.maxBytes} bytes (IOC_SOURCE_MAX_BYTES).`, status, wire);
  try {
    if (Number.isFinite(declared) && declared > limits.maxBytes) {
      response.destroy();
      throw tooBig();
    }
    const count = new Transform({
      transform(chunk: Buffer, _enc, done) {
        wire += chunk.length;
        if (wire > limits.maxBytes) return done(tooBig());
        done(null, chunk);
      },
    });
    const stages: NodeJS.ReadWriteStream[] = [count];
    const encoding = String(response.headers['content-encoding'] ?? '').toLowerCase();
    if (encoding === 'gzip') stages.push(zlib.createGunzip());
    stages.push(gzipSniff(encoding !== 'gzip', limits.maxBytes, tooBig, (n) => (out += n)));
    await pipeline(response, ...(stages as [NodeJS.ReadWriteStream]), fs.createWriteStream(file));
  } catch (err) {
    await fs.promises.rm(dir, { recursive: true, force: true });
    const expired = answer.expired();
    // The deadline's error, whatever error the stream it destroyed reported.
    if (expired) throw new FeedFetchError(expired.message, status, wire, expired.transient);
    if (err instanceof FeedFetchError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'Z_BUF_ERROR' || code === 'Z_DATA_ERROR' || /unexpected end of file|incorrect header check/i.test(String((err as Error).message))) {
      throw new FeedFetchError('The feed is a truncated or corrupt gzip stream.', status, wire);
    }
    throw new FeedFetchError(`The download broke off: ${code ?? (err as Error).message}.`, status, wire, true);
  }
  return {
    kind: 'body',
    status,
    bytes: wire,
    file,
    etag: header(response, 'etag'),
    lastModified: header(response, 'last-modified'),
    contentType: header(response, 'content-type'),
  };
}

/**
 * Passes the body on, inflating it when `sniff` is set and its first two bytes are gzip's magic (a feed.txt.gz
 * served without Content-Encoding). The first bytes are held until there are two, however the body is cut into
 * chunks: a first chunk of the lone 0x1f must not decide. `counted` is told each byte passed on, `tooBig` ends it
 * past maxBytes.
 */
function gzipSniff(sniff: boolean, maxBytes: number, tooBig: () => Error, counted: (n: number) => number): Transform {
  let head: Buffer | null = Buffer.alloc(0);
  let inflate: zlib.Gunzip | null = null;
  const forward = (chunk: Buffer, done: TransformCallback) => {
    if (inflate) {
      if (!inflate.write(chunk)) inflate.once('drain', () => done());
      else done();
      return;
    }
    if (counted(chunk.length) > maxBytes) return done(tooBig());
    done(null, chunk);
  };
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (head) {
        head = Buffer.concat([head, chunk]);
        if (head.length < 2) return done();
        chunk = head;
        head = null;
        if (sniff && chunk[0] === 0x1f && chunk[1] === 0x8b) {
          const gunzip = zlib.createGunzip();
          gunzip.on('data', (d: Buffer) => {
            if (counted(d.length) > maxBytes) gunzip.destroy(tooBig());
            else this.push(d);
          });
          gunzip.on('error', (e) => this.destroy(e));
          inflate = gunzip;
        }
      }
      forward(chunk, done);
    },
    flush(done) {
      // A body of one byte (or none) is passed on as it is.
      if (head?.length) {
        counted(head.length);
        this.push(head);
      }
      head = null;
      const gunzip = inflate;
      if (!gunzip) return done();
      gunzip.once('end', () => done());
      gunzip.once('error', (e) => done(e));
      gunzip.end();
    },
  });
}

function header(response: http.IncomingMessage, name: string): string | null {
  const v = response.headers[name];
  return typeof v === 'string' && v.length <= 500 ? v : null;
}
