import net from 'node:net';
import { createTestDatabase, drivers } from '../../helpers/db';
import { loadConfig } from '../../../src/config/config';
import { startServer } from '../../../src/app/server';
import { silentLogger } from '../../../src/app/logger';
import { ANALYTICS_MIGRATIONS } from '../../../src/modules/analytics/analytics-schema';
import { chdbConfig, describeChdb } from './chdb';
import fs from 'node:fs';

/** A loopback port that nothing listens on (ClickHouse down). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe.each(drivers)('ANALYTICS_URL at start (%s)', (driver) => {
  const serverConfig = async (env: Record<string, string>) => {
    const db = await createTestDatabase(driver);
    return { config: { ...loadConfig({ NODE_ENV: 'test', PORT: '0', HOST: '127.0.0.1', ...env }), database: db.config }, drop: db.drop };
  };

  describeChdb('on chDB', () => {
    it('migrates the ClickHouse tables, once, and /readyz names the tier up', async () => {
      const dir = chdbConfig().path;
      const { config, drop } = await serverConfig({ ANALYTICS_URL: `chdb://${dir}`, WORKER_ENABLED: 'false' });
      try {
        for (let start = 0; start < 2; start++) {
          const server = await startServer(config, silentLogger());
          try {
            const res = await fetch(`http://127.0.0.1:${server.port}/readyz`);
            expect(res.status).toBe(200);
            expect(await res.json()).toEqual({ status: 'ready', migrations: true, worker: 'disabled', database: 'up', analytics: 'up' });
            const client = server.services.analytics!.client;
            const versions = await (
              await client.query({ query: 'SELECT version FROM schema_migrations ORDER BY version', format: 'JSONEachRow' })
            ).json<{ version: number }>();
            expect(versions.map((v) => v.version)).toEqual(ANALYTICS_MIGRATIONS.map((m) => m.version));
          } finally {
            await server.stop();
          }
        }
      } finally {
        await drop();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  it('starts with ClickHouse down: /readyz stays 200 and names the analytics tier down', async () => {
    const { config, drop } = await serverConfig({ ANALYTICS_URL: `http://127.0.0.1:${await closedPort()}/pcd`, WORKER_ENABLED: 'false' });
    const server = await startServer(config, silentLogger());
    try {
      const res = await fetch(`http://127.0.0.1:${server.port}/readyz`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 'ready', migrations: true, worker: 'disabled', database: 'up', analytics: 'down' });
      expect(server.services.analytics!.ready).toBe(false);
    } finally {
      await server.stop();
      await drop();
    }
  });

  it('leaves /readyz as it was without ANALYTICS_URL', async () => {
    const { config, drop } = await serverConfig({ WORKER_ENABLED: 'false' });
    const server = await startServer(config, silentLogger());
    try {
      expect(server.services.analytics).toBeNull();
      expect(await (await fetch(`http://127.0.0.1:${server.port}/readyz`)).json()).toEqual({
        status: 'ready',
        migrations: true,
        worker: 'disabled',
        database: 'up',
      });
    } finally {
      await server.stop();
      await drop();
    }
  });
});
