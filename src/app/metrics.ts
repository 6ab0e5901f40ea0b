import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { DataSource } from 'typeorm';

const PREFIX = 'pcap_defense_';
/** Operation names come from clients: past this many distinct names, new ones count as "_other". */
const MAX_OPERATION_NAMES = 200;
const OPERATION_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

export interface JobOutcome {
  status: string;
  textBytes: number;
  durationMs: number;
  connections: number;
  hits: number;
}

/** What a scrape asks for the queue gauge; LogUploadQueue.depth() fits. */
export interface QueueDepthSource {
  depth(): Promise<Record<string, number>>;
}

/**
 * Prometheus metrics of one app instance, on a registry of its own (tests build many apps in one process;
 * prom-client's global registry would mix them or refuse duplicate names). Recording is always on and cheap;
 * GET /metrics exposes the registry only when METRICS_ENABLED=true.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly operationNames = new Set<string>();

  readonly httpRequests = new Counter({
    name: `${PREFIX}http_requests_total`,
    help: 'HTTP requests answered, by route, GraphQL operation name and status.',
    labelNames: ['method', 'route', 'operation', 'status'] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: `${PREFIX}http_request_duration_seconds`,
    help: 'Time from the request arriving to its response finishing, by route and GraphQL operation name.',
    labelNames: ['method', 'route', 'operation'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  readonly uploadsReceived = new Counter({
    name: `${PREFIX}uploads_received_total`,
    help: 'Uploads that reached an upload route and were answered (accepted, duplicate or refused), by way in.',
    labelNames: ['via'] as const,
    registers: [this.registry],
  });
  readonly uploadsAccepted = new Counter({
    name: `${PREFIX}uploads_accepted_total`,
    help: 'Uploads accepted, by way in; duplicate="true" when the same file was already stored (answered with the earlier upload).',
    labelNames: ['via', 'duplicate'] as const,
    registers: [this.registry],
  });
  readonly uploadsRefused = new Counter({
    name: `${PREFIX}uploads_refused_total`,
    help: 'Uploads refused (nothing stored), by way in and reason code.',
    labelNames: ['via', 'reason'] as const,
    registers: [this.registry],
  });
  readonly uploadBytes = new Counter({
    name: `${PREFIX}upload_bytes_received_total`,
    help: 'Bytes of accepted uploads as sent (gzip counted compressed), duplicates included.',
    labelNames: ['via'] as const,
    registers: [this.registry],
  });
  readonly jobs = new Counter({
    name: `${PREFIX}jobs_total`,
    help: 'Processing jobs finished, by outcome (completed, failed, lease_lost, error, gave_up).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly jobDuration = new Histogram({
    name: `${PREFIX}job_duration_seconds`,
    help: 'Time to process one upload (parse, fold, match, write), by outcome.',
    labelNames: ['outcome'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
    registers: [this.registry],
  });
  readonly parseThroughput = new Histogram({
    name: `${PREFIX}parse_throughput_bytes_per_second`,
    help: 'Text bytes processed per second of job time, per completed upload.',
    buckets: [1e5, 3e5, 1e6, 3e6, 1e7, 3e7, 1e8, 3e8, 1e9],
    registers: [this.registry],
  });
  readonly connections = new Counter({
    name: `${PREFIX}connections_total`,
    help: 'Connections folded from completed uploads.',
    registers: [this.registry],
  });
  readonly hitsWritten = new Counter({
    name: `${PREFIX}flow_hits_written_total`,
    help: 'Flow hits written by completed uploads.',
    registers: [this.registry],
  });
  readonly iocIndexEntries = new Gauge({
    name: `${PREFIX}ioc_index_entries`,
    help: 'Entries in the in-memory IOC index of each policy, as of its last build.',
    labelNames: ['policy'] as const,
    registers: [this.registry],
  });
  readonly iocIndexBuildSeconds = new Gauge({
    name: `${PREFIX}ioc_index_build_seconds`,
    help: "Time the last build of each policy's IOC index took.",
    labelNames: ['policy'] as const,
    registers: [this.registry],
  });
  readonly iocIndexBuilds = new Counter({
    name: `${PREFIX}ioc_index_builds_total`,
    help: 'IOC index (re)builds, by policy.',
    labelNames: ['policy'] as const,
    registers: [this.registry],
  });

  readonly reportResults = new Counter({
    name: `${PREFIX}report_results_total`,
    help: 'In-memory store report results, by how each request got one: computed, joined (a computation running for the same question), kept (a result computed earlier over the same hits).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly reportGiveWay = new Counter({
    name: `${PREFIX}report_give_way_seconds_total`,
    help: 'Time report work waited for uploads parsing (REPORT_GIVE_WAY_MS), by where: admission (a request before it was admitted), thread (a report thread before a grouping).',
    labelNames: ['at'] as const,
    registers: [this.registry],
  });
  readonly reportsRefused = new Counter({
    name: `${PREFIX}reports_refused_total`,
    help: 'Report queries refused by admission control (503), by reason: queue_full, queue_timeout, event_loop_lag.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly exportsRefused = new Counter({
    name: `${PREFIX}exports_refused_total`,
    help: 'GET /export/* downloads refused by admission control (503), by reason: queue_full, queue_timeout, event_loop_lag.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    // Process metrics (CPU, memory, event-loop lag, GC) start timers and observers: only for an app that serves them.
    // Unprefixed (process_*, nodejs_*), as the usual Node.js dashboards expect.
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /** A bounded label for a client-chosen operation name ("" when there is none). */
  operationLabel(name: string | null | undefined): string {
    if (!name) return '';
    if (!OPERATION_NAME.test(name)) return '_invalid';
    if (this.operationNames.has(name)) return name;
    if (this.operationNames.size >= MAX_OPERATION_NAMES) return '_other';
    this.operationNames.add(name);
    return name;
  }

  jobFinished(outcome: JobOutcome): void {
    const label = outcome.status.toLowerCase();
    this.jobs.inc({ outcome: label });
    this.jobDuration.observe({ outcome: label }, outcome.durationMs / 1000);
    if (outcome.status !== 'COMPLETED') return;
    if (outcome.durationMs > 0 && outcome.textBytes > 0) this.parseThroughput.observe(outcome.textBytes / (outcome.durationMs / 1000));
    this.connections.inc(outcome.connections);
    this.hitsWritten.inc(outcome.hits);
  }

  iocIndexBuilt(policyId: number, entries: number, ms: number): void {
    const policy = String(policyId);
    this.iocIndexEntries.set({ policy }, entries);
    this.iocIndexBuildSeconds.set({ policy }, ms / 1000);
    this.iocIndexBuilds.inc({ policy });
  }

  /** Queue depth by status, read from the database at each scrape (every process sees the shared queue). */
  watchQueue(queue: QueueDepthSource): void {
    new Gauge({
      name: `${PREFIX}queue_depth`,
      help: 'Uploads by status (QUEUED and PROCESSING are the pending work), counted at scrape time.',
      labelNames: ['status'] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const [status, n] of Object.entries(await queue.depth())) this.set({ status }, n);
      },
    });
  }

  /** Connections of the database pool at scrape time. */
  watchPool(dataSource: DataSource): void {
    new Gauge({
      name: `${PREFIX}db_pool_connections`,
      help: 'Database connections by state: in_use, free, and requests waiting for one (MySQL/MariaDB pool; SQLite has one connection).',
      labelNames: ['state'] as const,
      registers: [this.registry],
      collect() {
        const pool = poolCounts(dataSource);
        for (const [state, n] of Object.entries(pool)) this.set({ state }, n);
      },
    });
  }
}

/** mysql2's pool keeps its queues in underscore fields (no public API); SQLite is one shared connection. */
function poolCounts(dataSource: DataSource): { in_use: number; free: number; waiting: number } {
  if (!dataSource.isInitialized) return { in_use: 0, free: 0, waiting: 0 };
  const pool = (
    dataSource.driver as { pool?: { _allConnections?: { length: number }; _freeConnections?: { length: number }; _connectionQueue?: { length: number } } }
  ).pool;
  if (pool?._allConnections && pool._freeConnections) {
    const all = pool._allConnections.length;
    const free = pool._freeConnections.length;
    return { in_use: all - free, free, waiting: pool._connectionQueue?.length ?? 0 };
  }
  // better-sqlite3: a single connection, synchronous, whose transactions are serialised (sqlite-serializer.ts);
  // report it as one free connection so dashboards have the same series on both databases.
  return { in_use: 0, free: 1, waiting: 0 };
}
