/**
 * Whether this process should get traffic (GET /readyz): only once migrations ran and the worker started,
 * and no longer once shutdown began. /healthz is the liveness check (the process and its database answer).
 */
export class Readiness {
  private migrated = false;
  private workerStarted = false;
  private stopping = false;

  /** `workerRequired` is false when WORKER_ENABLED=false (an API-only process). */
  constructor(private readonly workerRequired: boolean) {}

  migrationsDone(): void {
    this.migrated = true;
  }

  workerRunning(): void {
    this.workerStarted = true;
  }

  shuttingDown(): void {
    this.stopping = true;
  }

  get ready(): boolean {
    return this.migrated && (this.workerStarted || !this.workerRequired) && !this.stopping;
  }

  /** The answer's body: what is still missing, without internals. */
  report(): { status: 'ready' | 'starting' | 'stopping'; migrations: boolean; worker: 'running' | 'starting' | 'disabled' } {
    return {
      status: this.stopping ? 'stopping' : this.ready ? 'ready' : 'starting',
      migrations: this.migrated,
      worker: !this.workerRequired ? 'disabled' : this.workerStarted ? 'running' : 'starting',
    };
  }
}
