import request from 'supertest';
import { createTestDatabase, drivers } from '../../helpers/db';
import { createTestApp } from '../../helpers/app';
import { loadConfig } from '../../../src/config/config';
import { startServer } from '../../../src/app/server';
import { silentLogger } from '../../../src/app/logger';

describe.each(drivers)('GET /readyz (%s)', (driver) => {
  const serverConfig = async (env: Record<string, string> = {}) => {
    const db = await createTestDatabase(driver);
    return { config: { ...loadConfig({ NODE_ENV: 'test', PORT: '0', HOST: '127.0.0.1', ...env }), database: db.config }, drop: db.drop };
  };

  it('is 503 while the app has not been started (migrations and worker not declared), while /healthz is 200', async () => {
    const t = await createTestApp(driver);
    try {
      const ready = await request(t.http.app).get('/readyz');
      expect(ready.status).toBe(503);
      expect(ready.body).toEqual({ status: 'starting', migrations: false, worker: 'starting', database: 'unchecked' });
      expect((await request(t.http.app).get('/healthz')).status).toBe(200);
      t.services.readiness.migrationsDone();
      expect((await request(t.http.app).get('/readyz')).status).toBe(503);
      t.services.readiness.workerRunning();
      expect((await request(t.http.app).get('/readyz')).status).toBe(200);
    } finally {
      await t.close();
    }
  });

  it('turns 200 once startServer has migrated and started the worker, and 503 as soon as shutdown begins', async () => {
    const { config, drop } = await serverConfig({ WORKER_POLL_MS: '50' });
    const server = await startServer(config, silentLogger());
    try {
      const res = await fetch(`http://127.0.0.1:${server.port}/readyz`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 'ready', migrations: true, worker: 'running', database: 'up' });
      expect((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status).toBe(200);

      const stopping = server.stop();
      // The listener no longer takes connections; the app itself answers what a load balancer would see.
      const during = await request(server.http.app).get('/readyz');
      expect(during.status).toBe(503);
      expect(during.body.status).toBe('stopping');
      await stopping;
    } finally {
      await drop();
    }
  });

  it('does not wait for a worker when WORKER_ENABLED=false', async () => {
    const { config, drop } = await serverConfig({ WORKER_ENABLED: 'false' });
    const server = await startServer(config, silentLogger());
    try {
      const res = await fetch(`http://127.0.0.1:${server.port}/readyz`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 'ready', migrations: true, worker: 'disabled', database: 'up' });
    } finally {
      await server.stop();
      await drop();
    }
  });
});
