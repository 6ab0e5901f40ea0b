/**
 * Counts turns of the event loop (one per check phase, by a chain of setImmediate) until stopped. Work that
 * gives the loop a turn between two steps sees a higher count at the second; work that runs in one turn
 * (promises that never wait on I/O) sees the same count throughout.
 */
export function turnCounter(): { readonly now: number; stop(): void } {
  let now = 0;
  let running = true;
  const tick = () => {
    now++;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  return {
    get now() {
      return now;
    },
    stop: () => void (running = false),
  };
}
