import { retryWhenBusy } from '../../../src/db/retry-when-busy';

/** An error as TypeORM wraps better-sqlite3's (QueryFailedError with the driver's error inside). */
const sqliteError = (code: string) => Object.assign(new Error('database is locked'), { driverError: { code } });

/** Work that fails with `codes[i]` on its i-th call and answers once they run out; `calls` counts its runs. */
function work(...codes: string[]) {
  const run = async () => {
    const code = codes[run.calls++];
    if (code) throw sqliteError(code);
    return 'imported';
  };
  run.calls = 0;
  return run;
}

describe('retryWhenBusy (a command beside a server on the same SQLite file)', () => {
  it('tries again while another process held the database, then answers', async () => {
    const w = work('SQLITE_BUSY_SNAPSHOT', 'SQLITE_BUSY');
    expect(await retryWhenBusy(w, 5, 1)).toBe('imported');
    expect(w.calls).toBe(3);
  });

  it('gives up after its tries, with the last error', async () => {
    const w = work('SQLITE_BUSY_SNAPSHOT', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_BUSY_SNAPSHOT');
    await expect(retryWhenBusy(w, 3, 1)).rejects.toThrow('database is locked');
    expect(w.calls).toBe(3);
  });

  it('does not try again after any other error', async () => {
    const w = work('SQLITE_CONSTRAINT_UNIQUE');
    await expect(retryWhenBusy(w, 5, 1)).rejects.toThrow();
    expect(w.calls).toBe(1);
  });
});
