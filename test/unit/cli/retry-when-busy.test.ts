import { retryWhenBusy } from '../../../src/cli/shared';

/** An error as TypeORM wraps better-sqlite3's (QueryFailedError with the driver's error inside). */
const sqliteError = (code: string) => Object.assign(new Error('database is locked'), { driverError: { code } });

describe('retryWhenBusy (a command beside a server on the same SQLite file)', () => {
  it('tries again while another process held the database, then answers', async () => {
    let calls = 0;
    const work = async () => {
      calls++;
      if (calls === 1) throw sqliteError('SQLITE_BUSY_SNAPSHOT');
      if (calls === 2) throw sqliteError('SQLITE_BUSY');
      return 'imported';
    };
    expect(await retryWhenBusy(work, 5, 1)).toBe('imported');
    expect(calls).toBe(3);
  });

  it('gives up after its tries, with the last error', async () => {
    let calls = 0;
    await expect(
      retryWhenBusy(
        async () => {
          calls++;
          throw sqliteError('SQLITE_BUSY_SNAPSHOT');
        },
        3,
        1,
      ),
    ).rejects.toThrow('database is locked');
    expect(calls).toBe(3);
  });

  it('does not try again after any other error', async () => {
    let calls = 0;
    await expect(
      retryWhenBusy(
        async () => {
          calls++;
          throw sqliteError('SQLITE_CONSTRAINT_UNIQUE');
        },
        5,
        1,
      ),
    ).rejects.toThrow();
    expect(calls).toBe(1);
  });
});
