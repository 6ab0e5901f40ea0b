import http from 'node:http';
import net from 'node:net';
import { AddressInfo } from 'node:net';
import { renderAlert, sampleMessage } from '../../../src/modules/alert/alert-message';
import { AddressGuard } from '../../../src/modules/alert/destinations/address-guard';
import { send, SendError } from '../../../src/modules/alert/destinations/senders';
import { DestinationSettings } from '../../../src/modules/alert/destinations/destination-settings';
import { AlertDestinationKind, SyslogFormat, SyslogTransport, WebhookFormat } from '../../../src/modules/alert/alert.enums';

/**
 * ALERT_TIMEOUT_MS bounds a whole send, whatever the receiver does: one that answers a byte at a time (each byte
 * well within any idle timeout) is cut at the deadline, and the send fails with a retryable "timed out". Before,
 * only socket idle timeouts applied, and such a receiver held a send for as long as it trickled (120 s seen).
 */
const TIMEOUT_MS = 300;
/** How long the receivers below would trickle if nobody cut them: far past the deadline. */
const TRICKLE_MS = 8_000;

interface Trickler {
  port: number;
  /** Connections the sender cut before the trickle ended. */
  cut: number;
  close(): void;
}

/** A TCP server that, once `start` says so, writes `bytes` one every 50 ms on each connection for TRICKLE_MS. */
async function trickler(start: (socket: net.Socket, go: () => void) => void, bytes: () => Buffer): Promise<Trickler> {
  const state = { cut: 0 };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    let timer: NodeJS.Timeout | undefined;
    let ended = false;
    const end = setTimeout(() => {
      ended = true;
      clearInterval(timer);
      socket.end();
    }, TRICKLE_MS);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      sockets.delete(socket);
      clearInterval(timer);
      clearTimeout(end);
      if (!ended) state.cut++;
    });
    start(socket, () => {
      timer = setInterval(() => socket.write(bytes()), 50);
    });
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
  return {
    port,
    get cut() {
      return state.cut;
    },
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

const guard = new AddressGuard(['127.0.0.0/8']);
const message = renderAlert(sampleMessage('1', new Date()));

async function timedSend(settings: DestinationSettings, secret: string | null = 'whsec_x') {
  const started = Date.now();
  const error = await send(settings, secret, message, { guard, timeoutMs: TIMEOUT_MS }).then(
    () => null,
    (err: unknown) => err,
  );
  return { error, ms: Date.now() - started };
}

/** The server saw its connection cut: waits a little for the close to arrive. */
async function cutSoon(t: Trickler) {
  for (let i = 0; i < 100 && t.cut === 0; i++) await new Promise((r) => setTimeout(r, 20));
  return t.cut;
}

describe('the send deadline (ALERT_TIMEOUT_MS)', () => {
  const servers: Array<{ close(): void }> = [];
  afterAll(() => servers.forEach((s) => s.close()));

  it('cuts a webhook that answers 200 and trickles its body', async () => {
    const t = await trickler(
      (socket, go) =>
        socket.once('data', () => {
          socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n');
          go();
        }),
      () => Buffer.from('1\r\n.\r\n'),
    );
    servers.push(t);
    const { error, ms } = await timedSend({
      kind: AlertDestinationKind.WEBHOOK,
      url: `http://127.0.0.1:${t.port}/slow`,
      format: WebhookFormat.JSON,
      caCertificate: null,
    });
    expect(error).toBeInstanceOf(SendError);
    expect((error as SendError).message).toMatch(/timed out.*300 ms.*ALERT_TIMEOUT_MS/);
    expect((error as SendError).retryable).toBe(true);
    // Generous: the deadline, not the trickle's 8 s, ended it.
    expect(ms).toBeLessThan(TRICKLE_MS / 2);
    expect(await cutSoon(t)).toBe(1);
  });

  it('cuts a webhook that trickles its status line and headers', async () => {
    let i = 0;
    const head = Buffer.from('HTTP/1.1 200 OK\r\nx-slow: ' + 'a'.repeat(10_000));
    const t = await trickler(
      (socket, go) => socket.once('data', go),
      () => head.subarray(i, ++i),
    );
    servers.push(t);
    const { error, ms } = await timedSend({
      kind: AlertDestinationKind.WEBHOOK,
      url: `http://127.0.0.1:${t.port}/slow`,
      format: WebhookFormat.SLACK,
      caCertificate: null,
    });
    expect((error as SendError).message).toMatch(/timed out/);
    expect(ms).toBeLessThan(TRICKLE_MS / 2);
    expect(await cutSoon(t)).toBe(1);
  });

  it('cuts syslog over TLS whose handshake trickles', async () => {
    // A TLS record header announcing 16 KiB, then its bytes one at a time: the client waits for the whole record.
    let first = true;
    const t = await trickler(
      (socket, go) =>
        socket.once('data', () => {
          socket.write(Buffer.from([0x16, 0x03, 0x03, 0x40, 0x00]));
          go();
        }),
      () => {
        const b = Buffer.from([first ? 0x02 : 0x00]);
        first = false;
        return b;
      },
    );
    servers.push(t);
    const { error, ms } = await timedSend(
      { kind: AlertDestinationKind.SYSLOG, host: '127.0.0.1', port: t.port, transport: SyslogTransport.TLS, format: SyslogFormat.JSON, caCertificate: null },
      null,
    );
    expect((error as SendError).message).toMatch(/timed out/);
    expect(ms).toBeLessThan(TRICKLE_MS / 2);
    expect(await cutSoon(t)).toBe(1);
  });

  it('cuts SMTP whose answer to EHLO trickles', async () => {
    const reply = Buffer.from(Array.from({ length: 400 }, (_, n) => `250-line${n}\r\n`).join(''));
    let i = 0;
    const t = await trickler(
      (socket, go) => {
        socket.write('220 slow.example ESMTP\r\n');
        socket.once('data', go);
      },
      () => reply.subarray(i, ++i),
    );
    servers.push(t);
    const { error, ms } = await timedSend(
      {
        kind: AlertDestinationKind.EMAIL,
        host: '127.0.0.1',
        port: t.port,
        secure: false,
        username: null,
        from: 'a@b.example',
        to: ['c@d.example'],
        caCertificate: null,
      },
      null,
    );
    expect((error as SendError).message).toMatch(/timed out/);
    expect(ms).toBeLessThan(TRICKLE_MS / 2);
    expect(await cutSoon(t)).toBe(1);
  });

  /** A webhook receiver that answers each post with `status` (and `headers`) at once. */
  const answering = async (status: number, headers: Record<string, string> = {}) => {
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(status, headers);
        res.end('ok');
      });
    });
    servers.push(server);
    const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
    return timedSend({ kind: AlertDestinationKind.WEBHOOK, url: `http://127.0.0.1:${port}/`, format: WebhookFormat.JSON, caCertificate: null });
  };

  it('still delivers to a receiver that answers in time', async () => {
    expect((await answering(200)).error).toBeNull();
  });

  it('says a redirect is not followed, and does not retry it', async () => {
    const { error } = await answering(301, { location: 'http://169.254.169.254/latest/meta-data' });
    expect((error as SendError).message).toMatch(/^HTTP 301: redirects are not followed/);
    expect((error as SendError).retryable).toBe(false);
  });
});
