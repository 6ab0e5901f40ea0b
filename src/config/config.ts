import os from 'node:os';
import path from 'node:path';
import { parseCidr } from '../common/net/cidr';

/** Every setting the service reads, typed and validated once at start. Nothing else reads process.env. */
export interface AppConfig {
  nodeEnv: 'development' | 'production' | 'test';
  host: string;
  port: number;
  /** `sqlite` (embedded default) or `mysql` (MySQL 8 / MariaDB 10.6+). */
  database: DatabaseConfig;
  /** Introspection for authenticated callers. */
  introspection: boolean;
  /**
   * What a browser gets at GET /graphql: `embedded` the explorer served from this server's own files (Altair, no
   * internet needed), `sandbox` Apollo Sandbox (loaded from Apollo's CDN, telemetry off), `off` a short page saying
   * so. The same in every NODE_ENV.
   */
  explorer: ExplorerMode;
  /**
   * Browser origins (scheme://host[:port], exact) whose pages may call the API across origins (CORS); empty: none.
   * Every other origin gets no Access-Control-Allow-* header, and Apollo's CSRF prevention applies to all.
   */
  corsOrigins: string[];
  /** Largest accepted upload, in bytes of (decompressed) text. */
  maxUploadBytes: number;
  /** Largest accepted IOC feed file, in bytes. */
  maxFeedBytes: number;
  /**
   * Express's "trust proxy": false (the socket's address is the client), a number of proxy hops, or the
   * addresses/subnets of trusted proxies. Never "trust every X-Forwarded-For".
   */
  trustProxy: false | number | string[];
  /** Flow hits and uploads older than this many days are purged (0 keeps everything). */
  retention: { days: number; intervalMs: number };
  /** Retro-hunts: at most `maxUploads` uploads re-run by one (RETRO_HUNT_MAX_UPLOADS); due ones are looked for every `intervalMs`. */
  retroHunt: { maxUploads: number; intervalMs: number };
  /**
   * Most flow hits the in-memory report store holds over all accounts (src/modules/report/hit-memory.ts; ~53
   * bytes each measured, budget 100); an account that does not fit is reported from SQL. 0 turns the store off.
   */
  reportMemoryMaxHits: number;
  /**
   * Worker threads that compute the store's reports (src/modules/report/report-thread/) so that the event loop
   * keeps serving while they run; 0 computes them on the main thread, a grouping per turn.
   */
  reportThreads: number;
  /**
   * Results of the store's reports kept for requests that ask the same thing of the same hits (shared-reports.ts);
   * 0 keeps none but still shares a computation between the requests that ask for it while it runs.
   */
  reportSharedResults: number;
  /** Whether store reports are shared at all (false: every request computes its own; for comparisons). */
  reportSharing: boolean;
  /**
   * Uploads first (src/common/threads/give-way.ts): while an upload parses, a report request waits up to this
   * long to be admitted, and a report thread up to this long in all per request before its groupings; 0: reports
   * never wait. By default 250 on a machine with fewer cores than the event loop, the parse threads and the report
   * threads together (there, report work slows uploads down), else 0.
   */
  reportGiveWayMs: number;
  /**
   * Nice increment of the report threads (Linux; src/common/threads/thread-priority.ts): where the cores are busy,
   * the event loop and the parse threads come before report work, which takes what they leave. 0: same priority.
   */
  reportThreadNice: number;
  /**
   * SQLite: how often a thread of its own checkpoints the WAL into the database file (src/db/sqlite-checkpointer.ts),
   * so the main connection's commits never do; 0 leaves it to SQLite's automatic checkpoints on the main thread.
   */
  sqliteCheckpointMs: number;
  /**
   * The in-process upload worker. `parseThreads`: worker threads that inflate, parse and fold uploads off the
   * event loop (0: on the main thread, a slice per turn).
   */
  worker: { enabled: boolean; leaseMs: number; pollMs: number; retryBaseMs: number; parseThreads: number };
  /** Name of the account created on first start. */
  defaultAccountName: string;
  /** Largest JSON body, and largest non-file field of a multipart body (the GraphQL operations), in bytes. */
  maxRequestBytes: number;
  /** How long one HTTP request may take, body included, before the socket is closed (slow uploads). */
  requestTimeoutMs: number;
  /** Graceful shutdown: how long in-flight requests may take before connections are closed and the process exits. */
  shutdownTimeoutMs: number;
  /** Bounds on one GraphQL operation, checked before any resolver runs. */
  queryLimits: QueryLimits;
  /** Requests per minute per API key (or client address when there is no key); 0 turns a limit off. */
  rateLimits: { uploadsPerMinute: number; reportsPerMinute: number };
  /**
   * Admission control of report queries (src/app/admission.ts): at most `concurrency` at once and `queue`
   * waiting (each for at most `queueTimeoutMs`); none waits while the event loop has stalled over `maxLagMs`
   * in the last second (0: no lag check). Refused requests get 503 with Retry-After `retryAfterSeconds`.
   */
  admission: AdmissionConfig;
  /**
   * The same for GET /export/* downloads, in slots of their own (EXPORT_CONCURRENCY, EXPORT_QUEUE; the wait, lag
   * and Retry-After are the reports'): a download holds its slot for as long as it streams.
   */
  exportAdmission: AdmissionConfig;
  /** pino level of the server log (JSON lines on stdout). */
  logLevel: LogLevel;
  /** Prometheus metrics at GET /metrics, behind their own bearer token; off by default. */
  metrics: { enabled: boolean; token: string | null };
  /**
   * The ClickHouse analytics tier (ANALYTICS_URL; src/modules/analytics/): null when unset, and nothing changes.
   * `http(s)://user:pass@host:8123/db` a ClickHouse server (24.8 or later); `chdb:///path` the engine embedded in
   * this process (npm `chdb`, installed apart: `npm install --prefix tools/chdb`), for tests and single-host installs.
   */
  analytics: AnalyticsConfig | null;
  /**
   * Alert delivery (src/modules/alert/). `allow`: CIDRs destinations may reach although they are loopback,
   * link-local or cloud metadata (refused otherwise). The worker polls the outbox every `pollMs`, holds a
   * delivery for `leaseMs`, retries from `retryBaseMs` (doubling, with jitter) for `retryForMs`. One send takes
   * `timeoutMs` at most (at most half the lease); `concurrency` sends are in flight at once, `destinationConcurrency`
   * of them to one destination.
   */
  alerts: {
    allow: string[];
    timeoutMs: number;
    pollMs: number;
    leaseMs: number;
    retryBaseMs: number;
    retryForMs: number;
    testIntervalMs: number;
    concurrency: number;
    destinationConcurrency: number;
  };
  /** How often a process with subscribers reads the database for upload progress and new hits (src/modules/live/). */
  livePollMs: number;
  /** Bounds of the subscriptions' socket (src/app/subscriptions.ts). */
  live: {
    /** Subscriptions running at once on one connection (LIVE_MAX_SUBSCRIPTIONS). */
    maxSubscriptions: number;
    /** Connections at once per API key, in this process (LIVE_MAX_CONNECTIONS_PER_KEY). */
    maxConnectionsPerKey: number;
    /** Output a connection may leave unsent (a client that does not read) before it is cut (LIVE_MAX_BUFFERED_BYTES). */
    maxBufferedBytes: number;
  };
  /** Threat-intel sources: feeds the server fetches on their schedule (src/modules/ioc-source). */
  iocSources: IocSourceConfig;
}

export interface IocSourceConfig {
  /** Largest feed body, decompressed, in bytes. */
  maxBytes: number;
  /** One HTTP request (each attempt, each redirect): a deadline for its headers and whole body, not an idle timeout. */
  timeoutMs: number;
  /** Attempts per fetch (network errors, 5xx, 429), waiting retryBaseMs, then twice as long, ... */
  attempts: number;
  retryBaseMs: number;
  /** How long one process holds a source while it fetches it; its downloads get half of it in all (feed-fetch deadline). */
  leaseMs: number;
  /** How often due sources are looked for. */
  pollMs: number;
  /** Shortest schedule a source may have. */
  minEverySeconds: number;
  /** Destinations in link-local and cloud-metadata ranges (169.254.0.0/16, fe80::/10, fd00:ec2::254, ...) refused unless true. */
  allowLinkLocal: boolean;
  /** Loopback destinations (127.0.0.0/8, ::1) refused unless true (tests serve feeds from a local server). */
  allowLoopback: boolean;
  /**
   * A REPLACE that would keep less than this share of a list's entries (0.1: the feed lost 90%) is held for
   * review instead of applied; 0 applies every REPLACE.
   */
  holdBelowRatio: number;
  /** IOC_SOURCE_SECRETS_KEY (32 bytes as 64 hex digits): header values are stored encrypted under it; null stores them as given. */
  secretsKey: Buffer | null;
}

export type AnalyticsConfig = { kind: 'http'; url: string; database: string } | { kind: 'chdb'; path: string; database: string };

export const EXPLORER_MODES = ['embedded', 'sandbox', 'off'] as const;
export type ExplorerMode = (typeof EXPLORER_MODES)[number];

export interface AdmissionConfig {
  concurrency: number;
  queue: number;
  queueTimeoutMs: number;
  maxLagMs: number;
  retryAfterSeconds: number;
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface QueryLimits {
  depth: number;
  aliases: number;
  directives: number;
  tokens: number;
  /** Estimated fields resolved: each field costs 1, a connection's selection costs `first` (default 20) times over. */
  cost: number;
}

export type DatabaseConfig = { type: 'sqlite'; file: string; url: undefined } | { type: 'mysql'; url: string; file: undefined; flavor?: 'mysql' | 'mariadb' };

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly expected: string,
    readonly actual: string | undefined,
  ) {
    super(`Invalid configuration: ${variable}=${JSON.stringify(actual)}; expected ${expected}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function str(env: Env, name: string, fallback: string): string {
  const value = env[name];
  return value === undefined || value === '' ? fallback : value;
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `a whole number from ${min} to ${max}`, raw);
  const value = Number(raw.trim());
  if (value < min || value > max) throw new ConfigError(name, `a whole number from ${min} to ${max}`, raw);
  return value;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(name, 'true or false', raw);
}

function hexKey(env: Env, name: string): Buffer | null {
  const raw = env[name]?.trim();
  if (!raw) return null;
  if (!/^[0-9a-fA-F]{64}$/.test(raw)) throw new ConfigError(name, '64 hex digits (a 32-byte key, e.g. `openssl rand -hex 32`)', '(not shown)');
  return Buffer.from(raw, 'hex');
}

/**
 * REPORT_GIVE_WAY_MS's default: 250 when the machine has fewer cores than the threads that would each want one
 * while reports and an upload run together (the event loop, the parse threads, the report threads), else 0.
 */
export function giveWayDefault(parseThreads: number, reportThreads: number, cores = os.availableParallelism()): number {
  return cores < 1 + parseThreads + reportThreads ? 250 : 0;
}

/** Byte sizes accept a plain number of bytes or a number with a KB/MB/GB suffix (powers of 1000, as the product page's "15 MB"). */
function bytes(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KIB|MIB|GIB)?\s*$/i.exec(raw);
  if (!m) throw new ConfigError(name, 'a size such as 15000000, 15MB or 512KiB', raw);
  const unit = (m[2] ?? 'B').toUpperCase();
  const factor: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, KIB: 1024, MIB: 1024 ** 2, GIB: 1024 ** 3 };
  const value = Math.floor(Number(m[1]) * factor[unit]);
  if (value < 1) throw new ConfigError(name, 'a size of at least 1 byte', raw);
  return value;
}

const PROXY_KEYWORDS = ['loopback', 'linklocal', 'uniquelocal'];

function trustProxy(env: Env): false | number | string[] {
  const raw = env.TRUST_PROXY?.trim();
  if (!raw || ['false', '0', 'no', 'off'].includes(raw.toLowerCase())) return false;
  const expected = 'a number of proxy hops (1, 2...) or a comma-separated list of proxy addresses, CIDRs or loopback/linklocal/uniquelocal (never "true")';
  if (/^\d+$/.test(raw)) return Number(raw);
  const items = raw
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  for (const item of items) {
    if (PROXY_KEYWORDS.includes(item.toLowerCase())) continue;
    if (!parseCidr(item, { minPrefixV4: 0, minPrefixV6: 0 }).ok) throw new ConfigError('TRUST_PROXY', expected, raw);
  }
  if (items.length === 0) throw new ConfigError('TRUST_PROXY', expected, raw);
  return items.map((i) => (PROXY_KEYWORDS.includes(i.toLowerCase()) ? i.toLowerCase() : i));
}

function database(env: Env, cwd: string): DatabaseConfig {
  const url = env.DATABASE_URL;
  if (url === undefined || url.trim() === '') {
    const dataDir = path.resolve(cwd, str(env, 'DATA_DIR', './data'));
    return { type: 'sqlite', file: path.join(dataDir, 'pcap-defense.sqlite'), url: undefined };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError('DATABASE_URL', 'mysql://user:pass@host:3306/db, or unset for the embedded SQLite file', '<unparseable URL>');
  }
  if (parsed.protocol === 'sqlite:') {
    return { type: 'sqlite', file: path.resolve(cwd, decodeURIComponent(parsed.pathname)), url: undefined };
  }
  if (parsed.protocol !== 'mysql:' && parsed.protocol !== 'mariadb:') {
    throw new ConfigError('DATABASE_URL', 'a mysql:// URL, or unset for the embedded SQLite file', `${parsed.protocol}//…`);
  }
  if (parsed.pathname.replace(/^\//, '') === '') {
    throw new ConfigError('DATABASE_URL', 'a database name in the path (mysql://user:pass@host:3306/db)', `${parsed.protocol}//${parsed.host}/`);
  }
  // mariadb:// names the flavor up front (the TypeORM CLI cannot ask the server); mysql:// is detected at start.
  const flavor = parsed.protocol === 'mariadb:' ? 'mariadb' : undefined;
  return { type: 'mysql', url: url.replace(/^mariadb:/, 'mysql:'), file: undefined, flavor };
}

function explorer(env: Env): ExplorerMode {
  // The old on/off switch: refused rather than ignored, so that GRAPHQL_SANDBOX=false never silently serves an explorer.
  if (env.GRAPHQL_SANDBOX !== undefined && env.GRAPHQL_SANDBOX !== '') {
    throw new ConfigError('GRAPHQL_SANDBOX', 'unset: it was replaced by GRAPHQL_EXPLORER=embedded|sandbox|off', env.GRAPHQL_SANDBOX);
  }
  const raw = str(env, 'GRAPHQL_EXPLORER', 'embedded');
  const mode = raw.trim().toLowerCase() as ExplorerMode;
  if (!EXPLORER_MODES.includes(mode)) throw new ConfigError('GRAPHQL_EXPLORER', EXPLORER_MODES.join(', '), raw);
  return mode;
}

/** Exact origins only: a wildcard would let any page that obtained a key call the API from a visitor's browser. */
function corsOrigins(env: Env): string[] {
  const raw = env.CORS_ORIGINS?.trim();
  if (!raw) return [];
  const expected =
    'a comma-separated list of exact origins such as https://dash.example.com,http://localhost:5173 (scheme, host and port; no path, no wildcard)';
  const origins = raw
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  for (const origin of origins) {
    let parsed: URL;
    try {
      parsed = new URL(origin);
    } catch {
      throw new ConfigError('CORS_ORIGINS', expected, raw);
    }
    // URL.origin is what a browser sends in the Origin header: it must equal the setting exactly.
    if (!['http:', 'https:'].includes(parsed.protocol) || parsed.origin !== origin || origin.includes('*'))
      throw new ConfigError('CORS_ORIGINS', expected, raw);
  }
  return [...new Set(origins)];
}

function alerts(env: Env): AppConfig['alerts'] {
  const timeoutMs = int(env, 'ALERT_TIMEOUT_MS', 10_000, 100, 120_000);
  const leaseMs = int(env, 'ALERT_LEASE_MS', 60_000, 1_000, 3_600_000);
  // A send must end well within its delivery's lease, or another process takes the delivery and sends it again
  // while the first send is still going; the rest of the lease is for recording the outcome. Refused rather than
  // clamped: config has no way to warn at start, and a silent change of a setting hides the mistake (CHANGELOG
  // names this refusal: it stops configurations that started before, with a lease under twice the timeout).
  if (timeoutMs * 2 > leaseMs) {
    const given = env.ALERT_TIMEOUT_MS === undefined || env.ALERT_TIMEOUT_MS === '' ? `${timeoutMs} (the default)` : String(timeoutMs);
    throw new ConfigError(
      'ALERT_TIMEOUT_MS',
      `at most half of ALERT_LEASE_MS (${leaseMs} ms), so a send ends well within its lease: set ALERT_TIMEOUT_MS to ${Math.floor(leaseMs / 2)} or less, or lengthen ALERT_LEASE_MS`,
      given,
    );
  }
  const concurrency = int(env, 'ALERT_CONCURRENCY', 16, 1, 1_000);
  return {
    allow: alertAllow(env),
    timeoutMs,
    pollMs: int(env, 'ALERT_POLL_MS', 1_000, 10, 60_000),
    leaseMs,
    retryBaseMs: int(env, 'ALERT_RETRY_BASE_MS', 5_000, 1, 3_600_000),
    retryForMs: int(env, 'ALERT_RETRY_FOR_MS', 86_400_000, 1_000, 604_800_000),
    testIntervalMs: int(env, 'ALERT_TEST_INTERVAL_MS', 10_000, 0, 3_600_000),
    concurrency,
    // More than ALERT_CONCURRENCY to one destination could never be in flight anyway.
    destinationConcurrency: Math.min(concurrency, int(env, 'ALERT_DESTINATION_CONCURRENCY', 4, 1, 1_000)),
  };
}

function alertAllow(env: Env): string[] {
  const raw = env.ALERT_DESTINATION_ALLOW?.trim();
  if (!raw) return [];
  const list = raw
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  for (const c of list)
    if (!parseCidr(c, { minPrefixV4: 0, minPrefixV6: 0 }).ok) throw new ConfigError('ALERT_DESTINATION_ALLOW', 'a comma-separated list of CIDRs', raw);
  return list;
}

function logLevel(env: Env): LogLevel {
  const raw = str(env, 'LOG_LEVEL', 'info');
  const level = raw.trim().toLowerCase() as LogLevel;
  if (!LOG_LEVELS.includes(level)) throw new ConfigError('LOG_LEVEL', LOG_LEVELS.join(', '), raw);
  return level;
}

/** A scrape token shorter than this is refused: it guards operational data on a public port. */
const MIN_METRICS_TOKEN = 16;

function metrics(env: Env): AppConfig['metrics'] {
  const enabled = bool(env, 'METRICS_ENABLED', false);
  const token = env.METRICS_TOKEN?.trim() || null;
  if (enabled && (!token || token.length < MIN_METRICS_TOKEN)) {
    // Never echo the token itself, even a short one.
    throw new ConfigError(
      'METRICS_TOKEN',
      `a bearer token of at least ${MIN_METRICS_TOKEN} characters when METRICS_ENABLED=true`,
      token ? '<too short>' : undefined,
    );
  }
  return { enabled, token: enabled ? token : null };
}

/** Reads and validates the environment; throws ConfigError naming the first bad variable. */
export function loadConfig(env: Env = process.env, cwd: string = process.cwd()): AppConfig {
  const rawEnv = str(env, 'NODE_ENV', 'development');
  if (!['development', 'production', 'test'].includes(rawEnv)) {
    throw new ConfigError('NODE_ENV', 'development, production or test', rawEnv);
  }
  const nodeEnv = rawEnv as AppConfig['nodeEnv'];
  const production = nodeEnv === 'production';
  const reportThreads = int(env, 'REPORT_THREADS', 1, 0, 64);
  const parseThreads = int(env, 'PARSE_THREADS', 1, 0, 64);
  const admission: AdmissionConfig = {
    concurrency: int(env, 'REPORT_CONCURRENCY', 2, 1, 1_000),
    queue: int(env, 'REPORT_QUEUE', 32, 0, 100_000),
    queueTimeoutMs: int(env, 'REPORT_QUEUE_TIMEOUT_MS', 2_000, 1, 600_000),
    maxLagMs: int(env, 'REPORT_MAX_EVENT_LOOP_LAG_MS', 200, 0, 60_000),
    retryAfterSeconds: int(env, 'REPORT_RETRY_AFTER_S', 1, 1, 3_600),
  };
  return {
    nodeEnv,
    host: str(env, 'HOST', '0.0.0.0'),
    port: int(env, 'PORT', 4000, 0, 65535),
    database: database(env, cwd),
    introspection: bool(env, 'GRAPHQL_INTROSPECTION', !production),
    explorer: explorer(env),
    corsOrigins: corsOrigins(env),
    maxUploadBytes: bytes(env, 'MAX_UPLOAD_BYTES', 15_000_000),
    maxFeedBytes: bytes(env, 'MAX_FEED_BYTES', 256_000_000),
    defaultAccountName: str(env, 'DEFAULT_ACCOUNT_NAME', 'default'),
    trustProxy: trustProxy(env),
    retention: {
      days: int(env, 'RETENTION_DAYS', 35, 0, 36_500),
      intervalMs: int(env, 'RETENTION_INTERVAL_MS', 3_600_000, 1_000, 604_800_000),
    },
    retroHunt: {
      maxUploads: int(env, 'RETRO_HUNT_MAX_UPLOADS', 10_000, 1, 10_000_000),
      intervalMs: int(env, 'RETRO_HUNT_INTERVAL_MS', 1_000, 10, 3_600_000),
    },
    reportMemoryMaxHits: int(env, 'REPORT_MEMORY_MAX_HITS', 2_000_000, 0, 1_000_000_000),
    reportThreads,
    reportSharedResults: int(env, 'REPORT_SHARED_RESULTS', 256, 0, 100_000),
    reportSharing: bool(env, 'REPORT_SHARING', true),
    reportGiveWayMs: int(env, 'REPORT_GIVE_WAY_MS', giveWayDefault(parseThreads, reportThreads), 0, 10_000),
    reportThreadNice: int(env, 'REPORT_THREAD_NICE', 10, 0, 19),
    sqliteCheckpointMs: int(env, 'SQLITE_CHECKPOINT_MS', 200, 0, 60_000),
    worker: {
      enabled: bool(env, 'WORKER_ENABLED', true),
      leaseMs: int(env, 'WORKER_LEASE_MS', 60_000, 1_000, 3_600_000),
      pollMs: int(env, 'WORKER_POLL_MS', 1_000, 10, 60_000),
      retryBaseMs: int(env, 'WORKER_RETRY_BASE_MS', 1_000, 1, 60_000),
      parseThreads,
    },
    maxRequestBytes: bytes(env, 'MAX_REQUEST_BYTES', 1_000_000),
    requestTimeoutMs: int(env, 'REQUEST_TIMEOUT_MS', 300_000, 1_000, 3_600_000),
    shutdownTimeoutMs: int(env, 'SHUTDOWN_TIMEOUT_MS', 10_000, 0, 600_000),
    queryLimits: {
      depth: int(env, 'MAX_QUERY_DEPTH', 12, 1, 1_000),
      aliases: int(env, 'MAX_QUERY_ALIASES', 30, 0, 100_000),
      directives: int(env, 'MAX_QUERY_DIRECTIVES', 50, 0, 100_000),
      tokens: int(env, 'MAX_QUERY_TOKENS', 2_000, 10, 1_000_000),
      cost: int(env, 'MAX_QUERY_COST', 10_000, 1, 100_000_000),
    },
    rateLimits: {
      uploadsPerMinute: int(env, 'RATE_LIMIT_UPLOADS_PER_MINUTE', 60, 0, 1_000_000),
      reportsPerMinute: int(env, 'RATE_LIMIT_REPORTS_PER_MINUTE', 120, 0, 1_000_000),
    },
    admission,
    exportAdmission: {
      ...admission,
      concurrency: int(env, 'EXPORT_CONCURRENCY', 2, 1, 1_000),
      queue: int(env, 'EXPORT_QUEUE', 4, 0, 100_000),
    },
    logLevel: logLevel(env),
    metrics: metrics(env),
    iocSources: {
      maxBytes: bytes(env, 'IOC_SOURCE_MAX_BYTES', 64_000_000),
      timeoutMs: int(env, 'IOC_SOURCE_TIMEOUT_MS', 60_000, 100, 3_600_000),
      attempts: int(env, 'IOC_SOURCE_ATTEMPTS', 3, 1, 10),
      retryBaseMs: int(env, 'IOC_SOURCE_RETRY_BASE_MS', 2_000, 1, 600_000),
      leaseMs: int(env, 'IOC_SOURCE_LEASE_MS', 600_000, 1_000, 86_400_000),
      pollMs: int(env, 'IOC_SOURCE_POLL_MS', 30_000, 10, 3_600_000),
      minEverySeconds: int(env, 'IOC_SOURCE_MIN_EVERY_S', 300, 1, 86_400),
      allowLinkLocal: bool(env, 'IOC_SOURCE_ALLOW_LINK_LOCAL', false),
      allowLoopback: bool(env, 'IOC_SOURCE_ALLOW_LOOPBACK', false),
      holdBelowRatio: int(env, 'IOC_SOURCE_HOLD_BELOW_PERCENT', 10, 0, 100) / 100,
      secretsKey: hexKey(env, 'IOC_SOURCE_SECRETS_KEY'),
    },
    alerts: alerts(env),
    livePollMs: int(env, 'LIVE_POLL_MS', 250, 10, 60_000),
    live: {
      maxSubscriptions: int(env, 'LIVE_MAX_SUBSCRIPTIONS', 50, 1, 10_000),
      maxConnectionsPerKey: int(env, 'LIVE_MAX_CONNECTIONS_PER_KEY', 20, 1, 100_000),
      maxBufferedBytes: int(env, 'LIVE_MAX_BUFFERED_BYTES', 4 * 1024 * 1024, 64 * 1024, 1024 * 1024 * 1024),
    },
    analytics: analytics(env, cwd),
  };
}

const ANALYTICS_EXPECTED = 'http(s)://[user:pass@]host:port[/database] or chdb:///path';

function analytics(env: Env, cwd: string): AnalyticsConfig | null {
  const raw = env.ANALYTICS_URL;
  if (raw === undefined || raw.trim() === '') return null;
  let parsed: URL;
  try {
    parsed = new URL(raw.trim());
  } catch {
    throw new ConfigError('ANALYTICS_URL', ANALYTICS_EXPECTED, '<unparseable URL>');
  }
  if (parsed.protocol === 'chdb:') {
    const file = decodeURIComponent(parsed.pathname);
    if (file === '' || file === '/') throw new ConfigError('ANALYTICS_URL', `${ANALYTICS_EXPECTED} (a directory in the path)`, raw);
    return { kind: 'chdb', path: path.resolve(cwd, file), database: 'default' };
  }
  // The URL is never echoed whole: it may carry a password.
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ConfigError('ANALYTICS_URL', ANALYTICS_EXPECTED, `${parsed.protocol}//…`);
  const database = decodeURIComponent(parsed.pathname.replace(/^\/+|\/+$/g, '')) || 'default';
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(database)) {
    throw new ConfigError('ANALYTICS_URL', `${ANALYTICS_EXPECTED} (a database name of letters, digits and _)`, `${parsed.protocol}//${parsed.host}/…`);
  }
  return { kind: 'http', url: raw.trim(), database };
}
