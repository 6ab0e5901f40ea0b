import 'reflect-metadata';
import { ConfigError, loadConfig } from './config/config';
import { createLogger } from './app/logger';
import { startServer } from './app/server';
import { exitOnSignals } from './app/shutdown';

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
  // JSON lines for log shipping; readable lines when a person watches the terminal.
  const logger = createLogger(config.logLevel, { pretty: process.stdout.isTTY === true });
  const server = await startServer(config, logger);
  if (server.bootstrapSecret) {
    // On a line of its own so scripts can pick it up; it is never printed again or logged.
    process.stdout.write(`Admin API key: ${server.bootstrapSecret}\n`);
  }
  logger.info({ url: server.url, database: config.database.type }, 'pcap-defense listening');
  exitOnSignals(server, logger, config.shutdownTimeoutMs);
}

main().catch((err) => {
  process.stderr.write(`pcap-defense failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
