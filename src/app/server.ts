import http from 'node:http';
import { AddressInfo } from 'node:net';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/config';
import { createDataSource, detectFlavor } from '../db/data-source';
import { migrate } from '../db/migrate';
import { createSchema } from '../graphql/schema';
import { createHttpApp, HttpApp } from './http-app';
import { attachSubscriptions } from './subscriptions';
import { Logger } from './logger';
import { createServices, ServiceOptions, Services } from './services';
import { LogUploadWorker } from '../modules/log-upload/log-upload.worker';
import { sqliteHandle } from '../db/sqlite-handle';

export interface RunningServer {
  url: string;
  port: number;
  dataSource: DataSource;
  services: Services;
  http: HttpApp;
  /** The admin secret created on first start, or null when the database already had an account. */
  bootstrapSecret: string | null;
  worker: LogUploadWorker;
  stop(): Promise<void>;
}

/** Opens the database, runs migrations, bootstraps the first account, and listens. */
export async function startServer(config: AppConfig, logger: Logger, options: ServiceOptions = {}): Promise<RunningServer> {
  const dataSource = createDataSource(await detectFlavor(config.database));
  await dataSource.initialize();
  const services = createServices(dataSource, config, { logger, ...options });
  // Under the migration lock, so that of processes starting at once only one creates the first account.
  const created = await migrate(dataSource, () => services.accounts.bootstrap(config.defaultAccountName));
  services.readiness.migrationsDone();
  // A server that cannot start the thread checkpoints on its main connection, as SQLite does by default.
  await services.sqliteCheckpointer
    ?.start()
    .catch((err) =>
      logger.error({ err, event: 'sqlite_checkpoint.start' }, 'the SQLite checkpoint thread did not start; the main connection checkpoints the WAL'),
    );
  await services.analytics?.start(
    (err, retryInMs) => logger.error({ err, event: 'analytics.unavailable', retryInMs }, 'ClickHouse (ANALYTICS_URL) unavailable; its migration is retried'),
    (versions) => logger.info({ event: 'analytics.migrated', versions }, 'ClickHouse tables migrated'),
  );
  const schema = await createSchema();
  const httpApp = await createHttpApp(schema, services, logger);
  const worker = new LogUploadWorker(services.queue, services.processor, { ...config.worker, analytics: services.analytics }, logger);
  services.logUploads.events.on('queued', () => worker.notify());
  services.retroHunts.events.on('queued', () => worker.notify());
  if (config.worker.enabled) {
    services.parsers?.start();
    worker.start();
    services.readiness.workerRunning();
    // Only a process that matches uploads needs the indexes: build them now, and again after each change.
    services.indexWarmer.start();
    // Threat-intel sources are fetched by processes that run the worker (a lease keeps it one at a time).
    services.iocSources.start();
    services.alertDispatcher.start();
  }
  const retention = startRetention(services, logger);
  const retroHunts = config.worker.enabled ? startRetroHunts(services, logger) : null;
  void warmReportMemory(services, logger);
  const server = createHttpServer(httpApp.app, config);
  const subscriptions = attachSubscriptions(server, schema, services, logger);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  return {
    url: `http://${host}:${port}/graphql`,
    port,
    dataSource,
    services,
    http: httpApp,
    bootstrapSecret: created?.secret ?? null,
    worker,
    stop: async () => {
      // /readyz answers 503 from now on.
      services.readiness.shuttingDown();
      if (retention) clearInterval(retention);
      if (retroHunts) clearInterval(retroHunts);
      services.reportMemory.close();
      services.admission.close();
      services.exportAdmission.close();
      // Subscriptions end first: an open WebSocket would hold the server open.
      services.live.feed.close();
      await subscriptions.close();
      // Stop accepting, hand a job in progress back at once, let in-flight requests finish, then close.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections are closed as soon as their request is answered.
      server.closeIdleConnections();
      const idle = setInterval(() => server.closeIdleConnections(), 50);
      // After SHUTDOWN_TIMEOUT_MS, requests still running (a stalled upload) are cut: nothing of them is stored.
      let force: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        force = setTimeout(() => {
          server.closeAllConnections();
          resolve();
        }, config.shutdownTimeoutMs);
      });
      try {
        // The job is handed back first (it stops waiting for an index build), then a warm-up stops at its next page.
        await worker.stop(true);
        await services.indexWarmer.stop();
        await services.iocSources.stop();
        await services.alertDispatcher.stop();
        await services.parsers?.close();
        await Promise.race([closed, deadline]);
        // After the requests: a report still computing fails with the threads.
        await services.reportThreads?.close();
      } finally {
        clearInterval(idle);
        clearTimeout(force);
      }
      await httpApp.apollo.stop();
      await services.databaseProbe.close();
      await services.analytics?.close();
      await services.sqliteCheckpointer?.close();
      checkpointSqlite(dataSource, logger);
      await dataSource.destroy();
    },
  };
}

/**
 * Moves every committed page from SQLite's -wal file into the database file and empties the WAL, so that after a
 * clean stop the .sqlite file alone holds everything (a copy of only that file is a complete backup). SQLite
 * does this itself when the last connection closes, but not while another process (a shell, a backup, a CLI
 * command) still has the file open.
 */
export function checkpointSqlite(dataSource: DataSource, logger: Logger): void {
  const db = sqliteHandle(dataSource);
  if (!db?.open) return;
  try {
    const [result] = db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number; log: number; checkpointed: number }>;
    // busy: a reader elsewhere held an old snapshot, so the WAL could not be emptied (its pages stay in the -wal file).
    if (result?.busy)
      logger.warn(
        { event: 'sqlite.checkpoint', ...result },
        'shutdown: the SQLite WAL could not be checkpointed fully (another process is reading); keep the -wal file with the database',
      );
  } catch (err) {
    logger.warn({ err, event: 'sqlite.checkpoint' }, 'shutdown: SQLite checkpoint failed; keep the -wal file with the database');
  }
}

/** The HTTP server: a request (body included) that takes longer than REQUEST_TIMEOUT_MS is answered 408 and its socket closed. */
export function createHttpServer(app: http.RequestListener, config: Pick<AppConfig, 'requestTimeoutMs'>): http.Server {
  return http.createServer(
    {
      requestTimeout: config.requestTimeoutMs,
      headersTimeout: Math.min(60_000, config.requestTimeoutMs),
      // How often Node looks for requests past their timeout (default 30 s).
      connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(config.requestTimeoutMs / 10))),
    },
    app,
  );
}

/** Purges old hits and uploads now and then (RETENTION_DAYS; 0 keeps everything). */
function startRetention(services: Services, logger: Logger): NodeJS.Timeout | null {
  const { days, intervalMs } = services.config.retention;
  if (days <= 0) return null;
  const run = () =>
    services.retention.purge().then(
      (r) => (r.flowHits || r.uploads ? logger.info({ ...r, days }, 'retention purge') : undefined),
      (err) => logger.error({ err }, 'retention purge failed'),
    );
  const timer = setInterval(run, intervalMs);
  timer.unref();
  void run();
  return timer;
}

/** Turns passed entry expiries into retro-hunts, plans the due ones and completes the finished ones, every RETRO_HUNT_INTERVAL_MS (one run at a time). */
function startRetroHunts(services: Services, logger: Logger): NodeJS.Timeout {
  let busy = false;
  const run = async () => {
    if (busy) return;
    busy = true;
    try {
      await services.retroHunts.checkExpiries();
      const planned = await services.retroHunts.runDue();
      if (planned) logger.info({ event: 'retro_hunt.planned', planned }, 'retro-hunts planned');
    } catch (err) {
      logger.error({ err, event: 'retro_hunt.failed' }, 'retro-hunt run failed');
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void run(), services.config.retroHunt.intervalMs);
  timer.unref();
  return timer;
}

/** Loads every account's hits into the in-memory report store, one account at a time, in the background. */
async function warmReportMemory(services: Services, logger: Logger): Promise<void> {
  if (!services.reportMemory.enabled) return;
  services.reportThreads?.start();
  try {
    const accounts: Array<{ id: number | string }> = await services.dataSource.query('SELECT id FROM account ORDER BY id');
    for (const { id } of accounts) {
      const started = performance.now();
      await services.reportMemory.warm(Number(id));
      logger.info(
        { event: 'report_memory.loaded', account: Number(id), heldHits: services.reportMemory.heldHits, durationMs: Math.round(performance.now() - started) },
        'report store loaded',
      );
    }
  } catch (err) {
    logger.warn({ err, event: 'report_memory.error', what: 'warm-up' }, 'in-memory report store: warm-up failed; reports use SQL until it loads');
  }
}
