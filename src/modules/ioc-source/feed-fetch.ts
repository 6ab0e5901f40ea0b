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
import { Transform } from 'node:stream';
import { cidrContains, parseCidr } from '../../common/net/cidr';
import { parseIp, unmapIp } from '../../common/net/ip';

export interface FetchLimits {
  maxBytes: number;
  timeoutMs: number;
  attempts: number;
  retryBaseMs: number;
  allowLinkLocal: boolean;
  allowLoopback: boolean;
  maxRedirects?: number;
}

export interface FetchRequest {
  url: string;
  /** Sent as they are (secrets included); never part of an error message. */
  headers: Record<string, string>;
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
  const ip = unmapIp(parsed);
  if (!limits.allowLinkLocal && LINK_LOCAL.some((c) => cidrContains(c, ip))) {
    return `${ip.text} is a link-local or cloud-metadata address (refused unless IOC_SOURCE_ALLOW_LINK_LOCAL=true)`;
  }
  if (!limits.allowLoopback && LOOPBACK.some((c) => cidrContains(c, ip))) {
    return `${ip.text} is a loopback address (refused unless IOC_SOURCE_ALLOW_LOOPBACK=true)`;
  }
  return null;
}

/** Checks a URL before any request: scheme, no credentials in it. */
export function checkSourceUrl(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'Not a URL.';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'Only http and https URLs can be fetched.';
  if (url.username || url.password) return 'Put credentials in a header (stored as a secret), not in the URL.';
  return null;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

/** dns.lookup that refuses every answer the guard refuses: the checked address is the one connected to. */
function guardedLookup(limits: FetchLimits) {
  return (hostname: string, options: dns.LookupOptions, callback: LookupCallback) => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      for (const a of addresses) {
        const why = refusedDestination(a.address, limits);
        if (why) return callback(Object.assign(new Error(`${hostname} resolves to ${why}`), { code: 'EREFUSED_DESTINATION' }), []);
      }
      if (options.all) return callback(null, addresses);
      return callback(null, addresses[0].address, addresses[0].family);
    });
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Fetches with retries: transient failures are tried again after retryBaseMs, 2x, 4x, ... */
export async function fetchFeed(request: FetchRequest, limits: FetchLimits): Promise<FetchResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetchOnce(request, limits);
    } catch (err) {
      if (!(err instanceof FeedFetchError) || !err.transient || attempt >= limits.attempts) throw err;
      await sleep(limits.retryBaseMs * 2 ** (attempt - 1));
    }
  }
}

async function fetchOnce(request: FetchRequest, limits: FetchLimits): Promise<FetchResult> {
  const maxRedirects = limits.maxRedirects ?? 5;
  const seen = new Set<string>();
  let url = new URL(request.url);
  for (let hop = 0; ; hop++) {
    const bad = checkSourceUrl(url.href);
    if (bad) throw new FeedFetchError(`${url.href}: ${bad}`);
    if (net.isIP(url.hostname.replace(/^\[|\]$/g, ''))) {
      const why = refusedDestination(url.hostname.replace(/^\[|\]$/g, ''), limits);
      if (why) throw new FeedFetchError(`Refused destination: ${why}.`);
    }
    seen.add(url.href);
    const answer = await send(url, request, limits);
    if ([301, 302, 303, 307, 308].includes(answer.status)) {
      answer.response.resume();
      const location = answer.response.headers.location;
      if (!location) throw new FeedFetchError(`HTTP ${answer.status} without a Location header.`, answer.status);
      const next = new URL(location, url);
      if (seen.has(next.href)) throw new FeedFetchError(`Redirect loop: ${next.href} redirects back to itself.`, answer.status);
      if (hop + 1 > maxRedirects) throw new FeedFetchError(`Too many redirects (more than ${maxRedirects}).`, answer.status);
      url = next;
      continue;
    }
    if (answer.status === 304) {
      answer.response.resume();
      return { kind: 'notModified', status: 304, bytes: 0 };
    }
    if (answer.status < 200 || answer.status > 299) {
      answer.response.resume();
      const transient = answer.status >= 500 || answer.status === 429;
      throw new FeedFetchError(`HTTP ${answer.status} ${answer.response.statusMessage ?? ''}`.trim() + '.', answer.status, 0, transient);
    }
    return receive(answer.response, answer.status, limits);
  }
}

function send(url: URL, request: FetchRequest, limits: FetchLimits): Promise<{ status: number; response: http.IncomingMessage }> {
  const headers: Record<string, string> = { 'user-agent': 'pcap-defense ioc-source', 'accept-encoding': 'gzip', ...request.headers };
  if (request.etag) headers['if-none-match'] = request.etag;
  if (request.lastModified) headers['if-modified-since'] = request.lastModified;
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(url, { method: 'GET', headers, lookup: guardedLookup(limits) as never, timeout: limits.timeoutMs }, (response) =>
      resolve({ status: response.statusCode ?? 0, response }),
    );
    req.on('timeout', () => req.destroy(new FeedFetchError(`No answer within ${limits.timeoutMs} ms.`, null, 0, true)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof FeedFetchError) return reject(err);
      if (err.code === 'EREFUSED_DESTINATION') return reject(new FeedFetchError(`Refused destination: ${err.message}.`));
      reject(new FeedFetchError(`Could not reach ${url.host}: ${err.code ?? err.message}.`, null, 0, true));
    });
    req.end();
  });
}

/** Streams the body to a file, inflating gzip (by Content-Encoding or magic bytes), within the size limit. */
async function receive(response: http.IncomingMessage, status: number, limits: FetchLimits): Promise<FetchResult> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'pcd-source-'));
  const file = path.join(dir, 'body');
  let wire = 0;
  let out = 0;
  let first: Buffer | null = null;
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
    // Sniff the first bytes: a gzip body served without Content-Encoding (feed.txt.gz) is inflated too.
    const stages: NodeJS.ReadWriteStream[] = [count];
    const encoding = String(response.headers['content-encoding'] ?? '').toLowerCase();
    let inflate: zlib.Gunzip | null = null;
    const sniff = new Transform({
      transform(chunk: Buffer, _enc, done) {
        if (first === null) {
          first = chunk;
          if (encoding !== 'gzip' && chunk.length >= 2 && chunk[0] === 0x1f && chunk[1] === 0x8b) {
            inflate = zlib.createGunzip();
            inflate.on('data', (d: Buffer) => {
              out += d.length;
              if (out > limits.maxBytes) inflate!.destroy(tooBig());
              else this.push(d);
            });
            inflate.on('error', (e) => this.destroy(e));
          }
        }
        if (inflate) {
          if (!inflate.write(chunk)) inflate.once('drain', () => done());
          else done();
          return;
        }
        out += chunk.length;
        if (out > limits.maxBytes) return done(tooBig());
        done(null, chunk);
      },
      flush(done) {
        if (!inflate) return done();
        inflate.once('end', () => done());
        inflate.once('error', (e) => done(e));
        inflate.end();
      },
    });
    if (encoding === 'gzip') {
      const gunzip = zlib.createGunzip();
      stages.push(gunzip);
    }
    stages.push(sniff);
    await pipeline(response, ...(stages as [NodeJS.ReadWriteStream]), fs.createWriteStream(file));
  } catch (err) {
    await fs.promises.rm(dir, { recursive: true, force: true });
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

function header(response: http.IncomingMessage, name: string): string | null {
  const v = response.headers[name];
  return typeof v === 'string' && v.length <= 500 ? v : null;
}
