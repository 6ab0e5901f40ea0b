import fs from 'node:fs';
import net, { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { AppConfig, loadConfig } from '../../src/config/config';
import { silentLogger } from '../../src/app/logger';
import { RunningServer, startServer } from '../../src/app/server';
import { createTestDatabase, drivers, TestDatabase } from '../helpers/db';
import { DatabaseProbe } from '../../src/db/database-probe';
import { DataSource } from 'typeorm';

// A database outage takes the process out of rotation (/readyz 503 with Retry-After) without getting it
// restarted (/healthz stays 200), and requests answer 503 SERVICE_UNAVAILABLE with Retry-After instead of a
// masked 500. When the database is back, the same process serves again.
// MariaDB: the server talks to it through a TCP proxy that the test stops (its connections cut) and restarts.
// SQLite: another connection holds the file's write lock, as a stuck shell or tool would.

/** A TCP proxy to 127.0.0.1:`target` that can be stopped (connections cut, port closed) and started again on its port. */
function tcpProxy(target: number) {
  const sockets = new Set<net.Socket>();
  let server: net.Server | null = null;
  let port = 0;
  return {
    get port() {
      return port;
    },
    start: () =>
      new Promise<void>((resolve, reject) => {
        if (server) return resolve();
        server = net.createServer((client) => {
          const upstream = net.connect(target, '127.0.0.1');
          const cut = () => {
            client.destroy();
            upstream.destroy();
            sockets.delete(client);
            sockets.delete(upstream);
          };
          for (const s of [client, upstream]) {
            sockets.add(s);
            s.on('error', cut).on('close', cut);
          }
          client.pipe(upstream).pipe(client);
        });
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
          port = (server!.address() as AddressInfo).port;
          resolve();
        });
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        sockets.clear();
        if (!server) return resolve();
        server.close(() => resolve());
        server = null;
      }),
  };
}

describe.each(drivers)('a database outage (%s)', (driver) => {
  let server: RunningServer;
  let db: TestDatabase | null = null;
  let dir: string;
  let key: string;
  let outage: { begin(): Promise<void>; end(): Promise<void> };
  const proxy = tcpProxy(3306);

  const get = (p: string, headers: Record<string, string> = {}) =>
    fetch(`http://127.0.0.1:${server.port}${p}`, { headers, signal: AbortSignal.timeout(20_000) });
  const gql = (query: string) =>
    fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ query }),
      signal: AbortSignal.timeout(20_000),
    });
  const form = () => {
    const body = new FormData();
    body.append('nickname', 'd');
    body.append('upfile', new Blob(['1700000000.000001 IP 10.0.0.1.1234 > 198.51.100.7.443: Flags [S], seq 1, length 0\n']), 'c.txt');
    return fetch(`http://127.0.0.1:${server.port}/logupload`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}` },
      body,
      signal: AbortSignal.timeout(20_000),
    });
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-outage-'));
    let config: AppConfig;
    const base = loadConfig({ NODE_ENV: 'test', PORT: '0', HOST: '127.0.0.1', DATA_DIR: dir, RETENTION_DAYS: '0', WORKER_POLL_MS: '100' });
    if (driver === 'mysql') {
      db = await createTestDatabase('mysql');
      const url = new URL((db.config as { url: string }).url);
      await proxy.start();
      url.port = String(proxy.port);
      config = { ...base, database: { ...db.config, url: url.toString() } as AppConfig['database'] };
      outage = { begin: proxy.stop, end: proxy.start };
    } else {
      config = base;
      let holder: Database.Database | null = null;
      outage = {
        begin: async () => {
          holder = new Database(path.join(dir, 'pcap-defense.sqlite'));
          holder.exec('BEGIN IMMEDIATE');
        },
        end: async () => {
          holder?.exec('ROLLBACK');
          holder?.close();
          holder = null;
        },
      };
    }
    server = await startServer(config, silentLogger());
    key = server.bootstrapSecret!;
  });
  afterAll(async () => {
    await outage.end();
    await server?.stop();
    await proxy.stop();
    await db?.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('is live but not ready, answers 503 with Retry-After, and serves again once the database is back', async () => {
    expect((await get('/readyz')).status).toBe(200);
    expect((await gql('{ viewer { role } }')).status).toBe(200);

    await outage.begin();
    try {
      const live = await get('/healthz');
      expect(live.status).toBe(200);

      // Past the probe's reuse window: the next /readyz asks the database.
      await new Promise((r) => setTimeout(r, 1100));
      const ready = await get('/readyz');
      expect(ready.status).toBe(503);
      expect(ready.headers.get('retry-after')).toBe('5');
      expect(await ready.json()).toMatchObject({ status: 'unavailable', database: 'down' });

      // A write (SQLite: reads still work beside the other connection's lock).
      const write = await gql('mutation { policyCreate(input: { name: "during" }) { policy { id } } }');
      expect(write.status).toBe(503);
      expect(write.headers.get('retry-after')).toBe('5');
      const body: any = await write.json();
      expect(body.errors).toEqual([
        expect.objectContaining({ message: expect.stringMatching(/database is unavailable/), extensions: { code: 'SERVICE_UNAVAILABLE' } }),
      ]);
      expect(JSON.stringify(body)).not.toMatch(/SQLITE|ECONN|ER_|policy\b.*INSERT/);

      if (driver === 'mysql') {
        // Nothing reaches the database, not even the key lookup of the form post or the export.
        const posted = await form();
        expect(posted.status).toBe(503);
        expect(posted.headers.get('retry-after')).toBe('5');
        expect(await posted.json()).toEqual({ code: 'SERVICE_UNAVAILABLE', error: expect.stringMatching(/database is unavailable/) });
        const exported = await get('/export/flow-hits.csv?preset=LAST_7_DAYS', { authorization: `Bearer ${key}` });
        expect(exported.status).toBe(503);
        expect(exported.headers.get('retry-after')).toBe('5');
      }
      expect((await get('/healthz')).status).toBe(200);
    } finally {
      await outage.end();
    }

    await new Promise((r) => setTimeout(r, 1100));
    expect((await get('/readyz')).status).toBe(200);
    const after = await gql('mutation { policyCreate(input: { name: "after" }) { policy { name } } }');
    expect(after.status).toBe(200);
    expect(((await after.json()) as any).data.policyCreate.policy.name).toBe('after');
  });
});

describe('the readiness probe against a database that accepts connections and never answers', () => {
  it('answers down within its bound, and probes arriving meanwhile share one attempt instead of piling up', async () => {
    const held = new Set<net.Socket>();
    const blackHole = net.createServer((socket) => held.add(socket.on('error', () => undefined)));
    await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
    const url = `mysql://root@127.0.0.1:${(blackHole.address() as AddressInfo).port}/x`;
    const dataSource = {
      isInitialized: true,
      options: { type: 'mysql', url },
      manager: { connection: { options: { type: 'mysql' } } },
    } as unknown as DataSource;
    const probe = new DatabaseProbe(dataSource, { timeoutMs: 300, reuseMs: 1000 });
    try {
      const answers = await Promise.all(Array.from({ length: 20 }, () => probe.up()));
      expect(answers).toEqual(Array(20).fill(false));
      expect(held.size).toBe(1);
      // Within the reuse window: the same answer, no new attempt.
      expect(await probe.up()).toBe(false);
      expect(held.size).toBe(1);
    } finally {
      await probe.close();
      for (const s of held) s.destroy();
      await new Promise((r) => blackHole.close(r));
    }
  });
});
