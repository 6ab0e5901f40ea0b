/**
 * Resolves on a later turn of the event loop (after pending I/O callbacks), not in the microtask queue.
 *
 * Loops of awaited promises that never wait on I/O (better-sqlite3 is synchronous behind its promises; a socket
 * with room takes a write at once) otherwise run to their end in one turn, and no other request is read,
 * timed or answered until they finish. Long batch loops call this between batches.
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
