import crypto from 'node:crypto';
import dgram from 'node:dgram';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import type { LookupFunction } from 'node:net';
import nodemailer from 'nodemailer';
import { Outgoing, syslogLine } from '../alert-message';
import { SyslogFormat, SyslogTransport, WebhookFormat } from '../alert.enums';
import { AddressGuard } from './address-guard';
import { DestinationSettings, EmailSettingsData, SyslogSettingsData, WebhookSettingsData } from './destination-settings';

/** A failed send: `message` is safe to store and show (it never holds a secret). */
export class SendError extends Error {
  constructor(
    message: string,
    /** False when trying again cannot help (a 4xx other than 408/429, an address refused). */
    readonly retryable = true,
  ) {
    super(message);
  }
}

export interface SendOptions {
  guard: AddressGuard;
  /**
   * The whole send, from resolving the name to the destination's last byte (ALERT_TIMEOUT_MS): past it the
   * connection is cut and the send fails (retryable). Socket idle timeouts alone would let a receiver that
   * trickles a byte now and then hold a send for as long as it likes.
   */
  timeoutMs: number;
  now?: Date;
}

/** Sends one alert to one destination; resolves when the destination accepted it, throws SendError otherwise. */
export async function send(settings: DestinationSettings, secret: string | null, m: Outgoing, options: SendOptions): Promise<void> {
  const deadline = new AbortController();
  // Listened to before the sender's own listeners (which cut its socket), so the race below settles with this error.
  const expired = new Promise<never>((_resolve, reject) =>
    deadline.signal.addEventListener('abort', () => reject(new SendError(`timed out: not done within ${options.timeoutMs} ms (ALERT_TIMEOUT_MS)`)), {
      once: true,
    }),
  );
  const timer = setTimeout(() => deadline.abort(), options.timeoutMs);
  const sending = sendTo(settings, secret, m, options, deadline.signal);
  // Once the deadline has passed, the sender's own failure (its socket cut) says nothing more.
  sending.catch(() => undefined);
  try {
    await Promise.race([sending, expired]);
  } catch (err) {
    if (err instanceof SendError) throw err;
    const msg = err instanceof Error ? err.message : String(err);
    // Refusals by the address guard cannot get better by retrying; everything else (network) may.
    throw new SendError(secret ? msg.split(secret).join('***') : msg, !/^refused: /.test(msg));
  } finally {
    clearTimeout(timer);
  }
}

async function sendTo(settings: DestinationSettings, secret: string | null, m: Outgoing, options: SendOptions, signal: AbortSignal): Promise<void> {
  switch (settings.kind) {
    case 'WEBHOOK':
      return sendWebhook(settings, secret ?? '', m, options, signal);
    case 'SYSLOG':
      return sendSyslog(settings, m, options, signal);
    case 'EMAIL':
      return sendEmail(settings, secret, m, options, signal);
  }
}

/** Destroys `socket` when the send's deadline passes (already passed: at once). */
function cutOnDeadline(signal: AbortSignal, socket: { destroy(err?: Error): void }): void {
  const cut = () => socket.destroy(new Error('cut at the deadline'));
  if (signal.aborted) cut();
  else signal.addEventListener('abort', cut, { once: true });
}

/** HMAC-SHA256 over `${timestamp}.${body}` with the destination's secret, hex: what X-PCD-Signature carries after `v1=`. */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return crypto.createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

function fixedLookup(address: string): LookupFunction {
  const family = net.isIPv6(address) ? 6 : 4;
  return ((_host: string, opts: { all?: boolean }, cb: (...args: unknown[]) => void) => {
    if (opts?.all) cb(null, [{ address, family }]);
    else cb(null, address, family);
  }) as unknown as LookupFunction;
}

async function sendWebhook(s: WebhookSettingsData, secret: string, m: Outgoing, o: SendOptions, signal: AbortSignal): Promise<void> {
  const url = new URL(s.url);
  const address = await o.guard.address(url.hostname);
  signal.throwIfAborted();
  const body = s.format === WebhookFormat.SLACK ? JSON.stringify({ text: m.summary }) : m.json;
  const timestamp = String(Math.floor((o.now ?? new Date()).getTime() / 1000));
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'user-agent': 'pcap-defense-alerts/1',
    'idempotency-key': m.idempotencyKey,
    'x-pcd-timestamp': timestamp,
    'x-pcd-signature': `v1=${webhookSignature(secret, timestamp, body)}`,
  };
  const lib = url.protocol === 'https:' ? https : http;
  const status = await new Promise<number>((resolve, reject) => {
    // TLS verifies the certificate against the URL's host name, with the destination's CA when it has one.
    const trust = url.protocol === 'https:' && s.caCertificate ? { ca: s.caCertificate } : {};
    const req = lib.request(url, { method: 'POST', headers, lookup: fixedLookup(address), ...trust }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('close', () => (res.complete ? undefined : reject(new Error('the answer was cut off'))));
      res.on('error', reject);
    });
    cutOnDeadline(signal, req);
    req.on('error', reject);
    req.end(body);
  });
  if (status >= 200 && status < 300) return;
  // Redirects are not followed (the address guard checked this URL's host, not where it points): a moved hook
  // stays moved, so retrying cannot help.
  if (status >= 300 && status < 400) throw new SendError(`HTTP ${status}: redirects are not followed; set the destination's URL to where it redirects`, false);
  throw new SendError(`HTTP ${status}`, status >= 500 || status === 408 || status === 429);
}

async function sendSyslog(s: SyslogSettingsData, m: Outgoing, o: SendOptions, signal: AbortSignal): Promise<void> {
  const address = await o.guard.address(s.host);
  signal.throwIfAborted();
  const line = syslogLine(m, s.format === SyslogFormat.CEF ? m.cef : m.json, os.hostname(), o.now ?? new Date());
  const bytes = Buffer.from(line, 'utf8');
  if (s.transport === SyslogTransport.UDP) {
    const socket = dgram.createSocket({ type: net.isIPv6(address) ? 'udp6' : 'udp4', signal });
    try {
      await new Promise<void>((resolve, reject) => socket.send(bytes, s.port, address, (err) => (err ? reject(err) : resolve())));
    } finally {
      // At the deadline the signal has closed it.
      if (!signal.aborted) socket.close();
    }
    return;
  }
  const frame = Buffer.concat([Buffer.from(`${bytes.length} `), bytes]);
  if (s.transport === SyslogTransport.TLS) {
    // RFC 5425: the same octet counting over TLS; the certificate is checked against the configured name.
    await new Promise<void>((resolve, reject) => {
      const socket = tls.connect({
        host: address,
        port: s.port,
        servername: net.isIP(s.host) ? undefined : s.host,
        checkServerIdentity: (_host, cert) => tls.checkServerIdentity(s.host, cert),
        ca: s.caCertificate || undefined,
      });
      cutOnDeadline(signal, socket);
      socket.on('error', reject);
      socket.on('secureConnect', () => socket.end(frame, () => resolve()));
    });
    return;
  }
  await new Promise<void>((resolve, reject) => {
    const socket = net.connect({ host: address, port: s.port });
    cutOnDeadline(signal, socket);
    socket.on('error', reject);
    socket.on('connect', () => socket.end(frame, () => resolve()));
  });
}

async function sendEmail(s: EmailSettingsData, password: string | null, m: Outgoing, o: SendOptions, signal: AbortSignal): Promise<void> {
  const address = await o.guard.address(s.host);
  signal.throwIfAborted();
  const transport = nodemailer.createTransport({
    host: address,
    port: s.port,
    // Our own connection to the checked address, so that the deadline can cut it (TLS, implicit or STARTTLS, runs over it).
    getSocket: (_options, callback) => {
      const socket = net.connect({ host: address, port: s.port });
      cutOnDeadline(signal, socket);
      const failed = (err: Error) => callback(err, false);
      socket.once('error', failed);
      socket.once('connect', () => {
        socket.off('error', failed);
        // nodemailer listens from here on; this one only keeps an error in between from being unhandled.
        socket.on('error', () => undefined);
        callback(null, { connection: socket });
      });
    },
    secure: s.secure,
    auth: s.username ? { user: s.username, pass: password ?? '' } : undefined,
    // The certificate is checked against the configured name, not the address connected to.
    // STARTTLS whenever the server offers it (nodemailer's default), with no plain-text fallback on a TLS error.
    tls: {
      servername: net.isIP(s.host) ? undefined : s.host,
      checkServerIdentity: (_host: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(s.host, cert),
      ...(s.caCertificate ? { ca: s.caCertificate } : {}),
    },
    connectionTimeout: o.timeoutMs,
    greetingTimeout: o.timeoutMs,
    socketTimeout: o.timeoutMs,
    logger: false,
  });
  try {
    await transport.sendMail({
      from: s.from,
      to: s.to,
      subject: m.subject,
      text: m.text,
      headers: { 'X-PCD-Idempotency-Key': m.idempotencyKey },
    });
  } finally {
    transport.close();
  }
}
