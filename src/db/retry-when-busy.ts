import { transientDbError } from '../common/errors/db-errors';

/**
 * Runs database work again when another process held the SQLite file: a few tries with a growing pause; any other
 * error at once. The work must be safe to try again: each of its steps one transaction, rolled back whole, that
 * looks again at what is there. SQLite answers BUSY without waiting out the busy timeout where waiting could
 * deadlock: BUSY_SNAPSHOT when a server on the same file commits while a command's transaction has read and then
 * writes (the CLI's import took the write lock at BEGIN since it began IMMEDIATE, but its other transactions, such as
 * creating the list, do not), and a switch to WAL asked by processes starting together on a new file.
 */
export async function retryWhenBusy<T>(work: () => Promise<T>, tries = 5, pauseMs = 100): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      if (attempt >= tries || transientDbError(err)?.kind !== 'busy') throw err;
      await new Promise((r) => setTimeout(r, pauseMs * 2 ** (attempt - 1)));
    }
  }
}
