import http from 'node:http';
import { AddressInfo } from 'node:net';
import { createHttpServer } from '../../src/app/server';
import { TestApp } from './app';

/** The test app on a real listening socket, with the server's own timeouts. */
export async function listen(t: TestApp): Promise<{ port: number; close(): Promise<void> }> {
  const server = createHttpServer(t.http.app, t.config);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface Part {
  name: string;
  filename?: string;
  body: Buffer | string;
}

/** A multipart/form-data body. */
export function multipart(parts: Part[], boundary = 'x-test-boundary-7a1c'): { body: Buffer; contentType: string } {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = `form-data; name="${p.name}"${p.filename ? `; filename="${p.filename}"` : ''}`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${p.filename ? 'Content-Type: application/octet-stream\r\n' : ''}\r\n`));
    chunks.push(Buffer.from(p.body));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json(): any;
}

/**
 * One POST over a real socket. With `expectContinue` the body waits for the server's `100 Continue`, as
 * curl does for large forms. With `withholdLast` the last bytes of the body are never sent: the answer comes
 * while the request is still incomplete, and the socket is dropped after it. Rejects with the socket's error
 * (a reset), or after `timeoutMs` without an answer.
 */
export function post(
  port: number,
  path: string,
  body: Buffer,
  headers: Record<string, string>,
  options: { agent?: http.Agent; expectContinue?: boolean; timeoutMs?: number; withholdLast?: number } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      path,
      method: 'POST',
      agent: options.agent ?? false,
      headers: { ...headers, 'content-length': String(body.length), ...(options.expectContinue ? { expect: '100-continue' } : {}) },
    });
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${options.timeoutMs ?? 10_000} ms`)), options.timeoutMs ?? 10_000);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
        if (options.withholdLast) req.destroy();
      });
    });
    // The server may answer (and stop reading) before the body is sent: a write after that is not the test's concern.
    const write = () => (options.withholdLast ? req.write(body.subarray(0, body.length - options.withholdLast)) : req.end(body));
    if (options.expectContinue) req.once('continue', write);
    else write();
  });
}

/** A GET over a real socket (same agent rules as post). */
export function get(port: number, path: string, options: { agent?: http.Agent; timeoutMs?: number } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: options.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
      });
    });
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${options.timeoutMs ?? 10_000} ms`)), options.timeoutMs ?? 10_000);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
