import { DataSource } from 'typeorm';
import { Connection, createConnection } from 'mysql2/promise';
import { dialectOf } from './bulk';
import { sqliteHandle } from './sqlite-handle';

export interface ProbeOptions {
  /** Longest a probe may take before the database counts as down. */
  timeoutMs: number;
  /** How long one answer is reused, so that probes from several balancers cost one query. */
  reuseMs: number;
}

/**
 * Whether the database can serve this process now (readiness), asked with a bounded wait and never more than
 * one probe at a time: an outage must not pile up probe queries behind the stuck one.
 * MySQL: SELECT 1 on a connection of its own (a pool busy with reports is load, not an outage).
 * SQLite: the write lock is taken and released at once (BEGIN IMMEDIATE; ROLLBACK) with a short busy
 * timeout: a file another process holds locked, or one that cannot be opened or written, is not ready.
 * While this process's own transaction is open the file is evidently usable and only page 1 is read.
 */
export class DatabaseProbe {
  private last: { up: boolean; at: number } | null = null;
  private running: Promise<boolean> | null = null;
  private mysql: Connection | null = null;
  private closed = false;

  constructor(
    private readonly dataSource: DataSource,
    private readonly options: ProbeOptions = { timeoutMs: 2000, reuseMs: 1000 },
  ) {}

  async up(): Promise<boolean> {
    const now = Date.now();
    if (this.last && now - this.last.at < this.options.reuseMs) return this.last.up;
    this.running ??= this.probe().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** At shutdown: drops the probe's connection, and any that a probe still opening makes. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.mysql) this.drop(this.mysql);
  }

  private async probe(): Promise<boolean> {
    let up: boolean;
    try {
      up = dialectOf(this.dataSource.manager) === 'sqlite' ? this.sqlite() : await this.withTimeout(this.mysqlPing());
    } catch {
      up = false;
    }
    this.last = { up, at: Date.now() };
    return up;
  }

  private sqlite(): boolean {
    const db = sqliteHandle(this.dataSource);
    if (!db?.open) return false;
    if (db.inTransaction) {
      db.pragma('schema_version', { simple: true });
      return true;
    }
    // Synchronous from here to the end: no other statement of this process runs in between.
    const busy = Number(db.pragma('busy_timeout', { simple: true }));
    db.pragma(`busy_timeout = ${Math.min(this.options.timeoutMs, 250)}`);
    try {
      db.exec('BEGIN IMMEDIATE');
      db.exec('ROLLBACK');
    } finally {
      db.pragma(`busy_timeout = ${busy}`);
    }
    return true;
  }

  private async mysqlPing(): Promise<boolean> {
    let conn = this.mysql;
    if (!conn) {
      const url = String((this.dataSource.options as { url?: string }).url);
      conn = await createConnection({ uri: url, connectTimeout: this.options.timeoutMs });
      if (this.closed) {
        conn.destroy();
        return false;
      }
      this.mysql = conn;
      // A connection the server or the network ended is replaced at the next probe.
      conn.on('error', () => this.drop(conn!));
    }
    try {
      await conn.query('SELECT 1');
    } catch (err) {
      this.drop(conn);
      throw err;
    }
    return true;
  }

  private drop(conn: Connection): void {
    if (this.mysql === conn) this.mysql = null;
    conn.destroy();
  }

  /** A probe past its time counts as down, and its connection is dropped so the next probe starts afresh. */
  private withTimeout(work: Promise<boolean>): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => {
        if (this.mysql) this.drop(this.mysql);
        resolve(false);
      }, this.options.timeoutMs);
    });
    work.catch(() => undefined);
    return Promise.race([work, late]).finally(() => clearTimeout(timer));
  }
}
