import 'reflect-metadata';
import { ConfigError, loadConfig } from './config/config';
import { createLogger } from './app/logger';
import { startServer } from './app/server';

/** Composition root: configuration, logger, server, signals. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(process.env.LOG_LEVEL);
  const server = await startServer(config, logger);
  if (server.bootstrapSecret) {
    // On a line of its own so scripts can pick it up; it is never printed again or logged.
    process.stdout.write(`Admin API key: ${server.bootstrapSecret}\n`);
  }
  logger.info({ url: server.url, database: config.database.type }, 'pcap-defense listening');
  const shutdown = async (signal: string) => {
    logger.info({ signal }, 'shutting down');
    await server.stop();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`pcap-defense failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
