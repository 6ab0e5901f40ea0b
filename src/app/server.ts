import http from 'node:http';
import { AddressInfo } from 'node:net';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/config';
import { createDataSource, detectFlavor } from '../db/data-source';
import { createSchema } from '../graphql/schema';
import { createHttpApp, HttpApp } from './http-app';
import { Logger } from './logger';
import { createServices, ServiceOptions, Services } from './services';
import { LogUploadWorker } from '../modules/log-upload/log-upload.worker';

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
  await dataSource.runMigrations({ transaction: 'each' });
  const services = createServices(dataSource, config, options);
  const created = await services.accounts.bootstrap(config.defaultAccountName);
  const httpApp = await createHttpApp(await createSchema(), services, logger);
  const worker = new LogUploadWorker(services.queue, services.processor, config.worker, logger);
  services.logUploads.events.on('queued', () => worker.notify());
  if (config.worker.enabled) worker.start();
  const server = http.createServer(httpApp.app);
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
      // Stop accepting, hand a job in progress back at once, let in-flight requests finish, then close.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await worker.stop(true);
      await closed;
      await httpApp.apollo.stop();
      await dataSource.destroy();
    },
  };
}
