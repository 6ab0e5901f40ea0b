import { DataSource } from 'typeorm';
import { AppConfig } from '../config/config';
import { AccountService } from '../modules/account/account.service';
import { DeviceService, HostResolver, systemResolver } from '../modules/device/device.service';
import { PolicyService } from '../modules/policy/policy.service';
import { IocListService } from '../modules/ioc/ioc-list.service';
import { IocService } from '../modules/ioc/ioc.service';
import { FeedImportService } from '../modules/ioc/feed-import.service';
import { IocSourceService } from '../modules/ioc-source/ioc-source.service';
import { IocIndexCache } from '../modules/ioc/ioc-index.cache';
import { IocIndexWarmer } from '../modules/ioc/ioc-index.warmer';
import { LogUploadService } from '../modules/log-upload/log-upload.service';
import { LogUploadQueue } from '../modules/log-upload/log-upload.queue';
import { LogUploadProcessor } from '../modules/log-upload/log-upload.processor';
import { GiveWay } from '../common/threads/give-way';
import { ParsePool } from '../modules/log-upload/parse-thread/parse-pool';
import { FlowHitService } from '../modules/flow-hit/flow-hit.service';
import { DnsHitService } from '../modules/dns-hit/dns-hit.service';
import { ReportService } from '../modules/report/report.service';
import { ReportThreads } from '../modules/report/report-thread/report-threads';
import { HitMemory } from '../modules/report/hit-memory';
import { SharedReports } from '../modules/report/shared-reports';
import { RetentionService } from '../modules/report/retention.service';
import { SqliteCheckpointer } from '../db/sqlite-checkpointer';
import { falsePositiveAllow } from '../modules/flow-hit/false-positive-allow';
import { HitTriageService } from '../modules/flow-hit/hit-triage.service';
import { RetroHuntService } from '../modules/retro-hunt/retro-hunt.service';
import { Logger, silentLogger } from './logger';
import { Metrics } from './metrics';
import { uploadTelemetry } from './upload-telemetry';
import { UploadTelemetry } from '../modules/log-upload/upload-telemetry';
import { Readiness } from './readiness';
import { DatabaseProbe } from '../db/database-probe';
import { ReportAdmission } from './admission';
import { AlertService } from '../modules/alert/alert.service';
import { AlertDispatcher } from '../modules/alert/alert.dispatcher';
import { AddressGuard } from '../modules/alert/destinations/address-guard';
import { LiveFeed } from '../modules/live/live-feed';
import { LiveService } from '../modules/live/live.service';
import { Analytics } from '../modules/analytics/analytics';
import { AnalyticsFlowHits } from '../modules/analytics/analytics-flow-hits';
import { AnalyticsHits } from '../modules/analytics/analytics-hits';
import { HitWriter } from '../modules/flow-hit/hit-writer';

/** Rows of report results kept for requests that ask the same again (REPORT_SHARED_RESULTS bounds their count). */
const SHARED_REPORT_ROWS = 50_000;

/** Every service, built once per process from the DataSource; resolvers reach them through the context. */
export interface Services {
  config: AppConfig;
  dataSource: DataSource;
  accounts: AccountService;
  policies: PolicyService;
  devices: DeviceService;
  iocLists: IocListService;
  iocs: IocService;
  feedImport: FeedImportService;
  /** Threat-intel sources; polls for due ones once started (the server starts it with its worker). */
  iocSources: IocSourceService;
  iocIndexes: IocIndexCache;
  /** Rebuilds stale indexes in the background; idle until started (the server starts it with its worker). */
  indexWarmer: IocIndexWarmer;
  logUploads: LogUploadService;
  /** Upload log lines and counters: LogUploadService.submit reports through it, the form route for forms it cannot read. */
  uploadTelemetry: UploadTelemetry;
  queue: LogUploadQueue;
  processor: LogUploadProcessor;
  /** The processor's parse threads (null with PARSE_THREADS=0); started on first use, closed with the services. */
  parsers: ParsePool | null;
  /** The report threads (null with REPORT_THREADS=0); started with the server, closed with the services. */
  reportThreads: ReportThreads | null;
  /** Raised while an upload parses; report threads and report admission give way to it (null: they do not). */
  giveWay: GiveWay | null;
  /** Store report results shared between requests (null with REPORT_SHARING=false). */
  reportShared: SharedReports | null;
  /** SQLite's WAL checkpoints off the event loop (null on MySQL, in memory, or with SQLITE_CHECKPOINT_MS=0); started and closed with the server. */
  sqliteCheckpointer: SqliteCheckpointer | null;
  flowHits: FlowHitService;
  dnsHits: DnsHitService;
  reports: ReportService;
  /** The reports' in-memory copy of the hits (off when REPORT_MEMORY_MAX_HITS is 0); the server warms it at start. */
  reportMemory: HitMemory;
  retention: RetentionService;
  /** Retro-hunts (#17): planned by the server's worker loop (startServer), or by retroHuntStart. */
  retroHunts: RetroHuntService;
  hitTriage: HitTriageService;
  logger: Logger;
  /** This app's Prometheus registry and instruments (never prom-client's global one). */
  metrics: Metrics;
  readiness: Readiness;
  /** Asked by /readyz; holds a MySQL connection of its own, closed with the services. */
  databaseProbe: DatabaseProbe;
  /** Bounds the report queries computed at once and refuses (503) past the bounds or while the event loop stalls. */
  admission: ReportAdmission;
  /** The same for GET /export/* downloads, with slots of their own (a download holds one while it streams). */
  exportAdmission: ReportAdmission;
  alerts: AlertService;
  /** Delivers the alert outbox; idle until started (the server starts it with its worker). */
  alertDispatcher: AlertDispatcher;
  /** What GraphQL subscriptions yield; its feed polls only while someone subscribes, and is closed with the server. */
  live: LiveService;
  /** The ClickHouse analytics tier (null unless ANALYTICS_URL is set); migrated by the server at start. */
  analytics: Analytics | null;
  /** The hit reads from ClickHouse (drill-down, by ID, the export); null unless ANALYTICS_URL is set. */
  analyticsFlowHits: AnalyticsFlowHits | null;
  /** The one writer of flow hits, to ClickHouse with the analytics tier: the processor, device deletion and retention share it. */
  hitWriter: HitWriter;
}

export interface ServiceOptions {
  resolveHost?: HostResolver;
  /** Called as the worker parses; the crash test uses it to die mid-job. */
  onProgress?: (uploadId: number, bytes: number) => void;
  /** The parse threads' entry module and its data, instead of parse-thread.main (tests give a slow one). */
  parseThread?: { script: string; workerData?: unknown };
  /** Silent when not given (CLI commands). */
  logger?: Logger;
  metrics?: Metrics;
}

export function createServices(dataSource: DataSource, config: AppConfig, options: ServiceOptions = {}): Services {
  const logger = options.logger ?? silentLogger();
  const metrics = options.metrics ?? new Metrics({ defaultMetrics: config.metrics.enabled });
  const iocIndexes = new IocIndexCache(
    dataSource,
    (policyId, index, ms) => {
      metrics.iocIndexBuilt(policyId, index.stats.entries, ms);
      logger.info(
        { event: 'ioc_index.built', policy: policyId, entries: index.stats.entries, lists: index.stats.lists, durationMs: Math.round(ms) },
        'IOC index built',
      );
    },
    {
      onFailure: (err) => logger.warn({ event: 'ioc_index.thread_failed', err: err.message }, 'IOC index build thread failed: built in place instead'),
    },
  );
  const indexWarmer = new IocIndexWarmer(dataSource, iocIndexes, logger);
  const analytics = config.analytics ? new Analytics(config.analytics, config.retention.days) : null;
  const hitWriter = new HitWriter(analytics ? new AnalyticsHits(analytics.client, () => analytics.ready) : null);
  const devices = new DeviceService(dataSource, options.resolveHost ?? systemResolver, indexWarmer, hitWriter);
  const queue = new LogUploadQueue(dataSource);
  queue.events.on('gave-up', ({ uploadId, attempts }: { uploadId: number; attempts: number }) => {
    metrics.jobs.inc({ outcome: 'gave_up' });
    logger.warn({ event: 'upload.failed', uploadId, attempts, reason: 'gave up: the worker stopped during every attempt' }, 'upload failed');
  });
  const reportMemory = new HitMemory(dataSource, {
    maxHits: config.reportMemoryMaxHits,
    onError: (err, what) => logger.warn({ err, event: 'report_memory.error', what }, 'in-memory report store: falling back to SQL'),
  });
  // Uploads first: report work waits (a bounded time) while an upload parses (REPORT_GIVE_WAY_MS).
  const giveWay = config.reportGiveWayMs > 0 ? new GiveWay() : null;
  const gaveWay = (at: 'admission' | 'thread') => (ms: number) => metrics.reportGiveWay.inc({ at }, ms / 1000);
  const reportThreads =
    config.reportThreads > 0
      ? new ReportThreads({
          threads: config.reportThreads,
          nice: config.reportThreadNice,
          giveWay: giveWay ? { signal: giveWay, maxWaitMs: config.reportGiveWayMs, onWaited: gaveWay('thread') } : undefined,
          onThreadExit: (err) =>
            logger.error({ err, event: 'report_thread.exit' }, 'a report thread stopped; its reports failed and the next report starts another'),
        })
      : null;
  const reportShared = config.reportSharing
    ? new SharedReports({
        maxEntries: config.reportSharedResults,
        maxRows: SHARED_REPORT_ROWS,
        onResult: (outcome) => metrics.reportResults.inc({ outcome }),
      })
    : null;
  const databaseProbe = new DatabaseProbe(dataSource);
  const analyticsFlowHits = analytics ? new AnalyticsFlowHits(analytics, dataSource) : null;
  const telemetry = uploadTelemetry(metrics, logger);
  const parsers =
    config.worker.parseThreads > 0
      ? new ParsePool({
          threads: config.worker.parseThreads,
          script: options.parseThread?.script,
          workerData: options.parseThread?.workerData,
          onThreadExit: (err) => logger.error({ err, event: 'parse_thread.exit' }, 'a parse thread stopped; its job failed and the next job starts another'),
        })
      : null;
  const feedImport = new FeedImportService(dataSource, indexWarmer);
  const alertSettings = { guard: new AddressGuard(config.alerts.allow), timeoutMs: config.alerts.timeoutMs, testIntervalMs: config.alerts.testIntervalMs };
  const alerts = new AlertService(dataSource, alertSettings);
  const alertDispatcher = new AlertDispatcher(
    dataSource,
    alerts,
    alertSettings,
    {
      pollMs: config.alerts.pollMs,
      leaseMs: config.alerts.leaseMs,
      retryBaseMs: config.alerts.retryBaseMs,
      retryForMs: config.alerts.retryForMs,
      concurrency: config.alerts.concurrency,
      destinationConcurrency: config.alerts.destinationConcurrency,
    },
    logger,
  );
  const policies = new PolicyService(dataSource, indexWarmer);
  const iocLists = new IocListService(dataSource, indexWarmer);
  const iocs = new IocService(dataSource, indexWarmer);
  metrics.watchQueue(queue);
  metrics.watchPool(dataSource);
  return {
    config,
    dataSource,
    accounts: new AccountService(dataSource),
    policies,
    devices,
    iocLists,
    iocs,
    feedImport,
    iocSources: new IocSourceService(dataSource, feedImport, config.iocSources, logger),
    iocIndexes,
    indexWarmer,
    logUploads: new LogUploadService(dataSource, devices, config.maxUploadBytes, config.retention.days, telemetry),
    uploadTelemetry: telemetry,
    queue,
    processor: new LogUploadProcessor(
      dataSource,
      queue,
      iocIndexes,
      {
        leaseMs: config.worker.leaseMs,
        hitWriter,
        retry: { baseMs: config.worker.retryBaseMs },
        onRetry: (event) => logger.warn({ event: 'job.retry', ...event }, 'transient database error; finishing transaction retried'),
        retentionDays: config.retention.days,
        onProgress: options.onProgress,
        giveWay,
        onFinished: (outcome) => {
          metrics.jobFinished(outcome);
          // Alerts this process just wrote go out now, not at the next poll (other processes' at their poll).
          if (outcome.hits > 0 || ('dnsHits' in outcome && (outcome.dnsHits ?? 0) > 0)) alertDispatcher.notify();
        },
      },
      parsers,
    ),
    parsers,
    flowHits: new FlowHitService(dataSource, analyticsFlowHits),
    analyticsFlowHits,
    dnsHits: new DnsHitService(dataSource),
    reports: new ReportService(dataSource, {
      memory: reportMemory,
      threads: reportThreads,
      analytics,
      shared: reportShared,
    }),
    reportMemory,
    reportThreads,
    giveWay,
    reportShared,
    sqliteCheckpointer:
      config.database.type === 'sqlite' && config.database.file !== ':memory:' && config.sqliteCheckpointMs > 0
        ? new SqliteCheckpointer(dataSource, {
            intervalMs: config.sqliteCheckpointMs,
            onExit: (err) =>
              logger.error({ err, event: 'sqlite_checkpoint.exit' }, 'the SQLite checkpoint thread stopped; the main connection checkpoints the WAL again'),
            onFailure: (message) =>
              logger.warn(
                { event: 'sqlite_checkpoint.failed', reason: message },
                'SQLite WAL checkpoint failed; the pages stay in the WAL and it is tried again',
              ),
          })
        : null,
    retention: new RetentionService(dataSource, config.retention.days, { hitWriter }),
    hitTriage: new HitTriageService(dataSource, falsePositiveAllow(dataSource, policies, iocLists, iocs), analyticsFlowHits),
    retroHunts: new RetroHuntService(dataSource, { maxUploads: config.retroHunt.maxUploads, retentionDays: config.retention.days }),
    logger,
    metrics,
    readiness: new Readiness(config.worker.enabled, databaseProbe, analytics),
    databaseProbe,
    admission: new ReportAdmission(
      config.admission,
      (reason) => metrics.reportsRefused.inc({ reason }),
      giveWay ? { signal: giveWay, maxWaitMs: config.reportGiveWayMs, onWaited: gaveWay('admission') } : undefined,
    ),
    exportAdmission: new ReportAdmission(config.exportAdmission, (reason) => metrics.exportsRefused.inc({ reason })),
    alerts,
    alertDispatcher,
    live: new LiveService(
      dataSource,
      new LiveFeed(dataSource, config.livePollMs, (err) => logger.warn({ err, event: 'live.poll_error' }, 'subscription poll failed')),
      analyticsFlowHits,
    ),
    analytics,
    hitWriter,
  };
}
