import { DatabaseProbe } from '../db/database-probe';

export interface ReadinessReport {
  status: 'ready' | 'starting' | 'stopping' | 'unavailable';
  migrations: boolean;
  worker: 'running' | 'starting' | 'disabled';
  /** `unchecked` while starting or stopping: the database is asked only when all else is ready. */
  database: 'up' | 'down' | 'unchecked';
  /**
   * The ClickHouse analytics tier, only with ANALYTICS_URL set. Down does not take the process out of rotation
   * (uploads are still accepted and queued in SQL; reports answer ANALYTICS_UNAVAILABLE): the body names it.
   */
  analytics?: 'up' | 'down' | 'unchecked';
}

/** Asked by check() when the analytics tier is on (Analytics.up()). */
export interface AnalyticsProbe {
  up(): Promise<boolean>;
}

/**
 * Whether this process should get traffic (GET /readyz): only once migrations ran and the worker started,
 * while its database answers, and no longer once shutdown began. /healthz is liveness: the process answers
 * at all (no database query), so a database outage takes processes out of rotation instead of restarting them.
 */
export class Readiness {
  private migrated = false;
  private workerStarted = false;
  private stopping = false;

  /** `workerRequired` is false when WORKER_ENABLED=false (an API-only process). */
  constructor(
    private readonly workerRequired: boolean,
    private readonly database?: DatabaseProbe,
    private readonly analytics?: AnalyticsProbe | null,
  ) {}

  migrationsDone(): void {
    this.migrated = true;
  }

  workerRunning(): void {
    this.workerStarted = true;
  }

  shuttingDown(): void {
    this.stopping = true;
  }

  /** Started and not stopping; says nothing of the database (see check()). */
  get ready(): boolean {
    return this.migrated && (this.workerStarted || !this.workerRequired) && !this.stopping;
  }

  /** The answer's body: what is missing, without internals. */
  async check(): Promise<ReadinessReport> {
    const worker = !this.workerRequired ? 'disabled' : this.workerStarted ? 'running' : 'starting';
    const base = { migrations: this.migrated, worker } as const;
    const unchecked = this.analytics ? { analytics: 'unchecked' as const } : {};
    if (this.stopping) return { status: 'stopping', ...base, database: 'unchecked', ...unchecked };
    if (!this.ready) return { status: 'starting', ...base, database: 'unchecked', ...unchecked };
    if (this.database && !(await this.database.up())) return { status: 'unavailable', ...base, database: 'down', ...unchecked };
    const analytics = this.analytics ? { analytics: (await this.analytics.up()) ? ('up' as const) : ('down' as const) } : {};
    return { status: 'ready', ...base, database: 'up', ...analytics };
  }
}
