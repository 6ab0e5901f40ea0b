import { formatBytes, formatDuration, ProgressBar, renderProgress } from '../../../src/common/progress/progress-bar';

/** A stream that says it is a terminal, and keeps what is written. */
function fakeTty(columns = 100) {
  const writes: string[] = [];
  return { isTTY: true, columns, writes, write: (s: string) => (writes.push(s), true) };
}

describe('progress bar', () => {
  it.each([
    [0, '0 B'],
    [999, '999 B'],
    [1000, '1.0 kB'],
    [1_234_567, '1.2 MB'],
    [15_000_000, '15 MB'],
    [2_500_000_000, '2.5 GB'],
  ])('formatBytes(%d) = %s', (n, text) => expect(formatBytes(n)).toBe(text));

  it.each([
    [0, '0:00'],
    [7.4, '0:07'],
    [754, '12:34'],
    [3723, '1:02:03'],
  ])('formatDuration(%d) = %s', (s, text) => expect(formatDuration(s)).toBe(text));

  it('renders percent, amounts, rate and ETA, fitted to the terminal width', () => {
    const line = renderProgress({ label: 'capture.txt', done: 5_000_000, total: 20_000_000, unit: 'bytes', elapsedMs: 2_000, columns: 100 });
    expect(line).toMatch(/^capture\.txt \[#{10}-{30}\]  25%  5\.0 MB \/ 20 MB  2\.5 MB\/s  ETA 0:06$/);
    expect(line.length).toBeLessThan(100);
    const narrow = renderProgress({ label: 'capture.txt', done: 5_000_000, total: 20_000_000, unit: 'bytes', elapsedMs: 2_000, columns: 50 });
    expect(narrow.length).toBeLessThanOrEqual(49);
    expect(narrow).toContain('25%');
    // Too early to tell a rate.
    expect(renderProgress({ label: 'f', done: 100, total: 1000, unit: 'bytes', elapsedMs: 10, columns: 80 })).toMatch(
      / 10%  100 B \/ 1\.0 kB  -- B\/s  ETA --:--$/,
    );
    // Unknown total (stdin): amount, rate and elapsed time, no bar.
    expect(renderProgress({ label: 'stdin', done: 3_000_000, total: null, unit: 'bytes', elapsedMs: 1_000, columns: 80 })).toBe(
      'stdin  3.0 MB  3.0 MB/s  0:01',
    );
    // A server-side job in percent.
    expect(renderProgress({ label: 'processing', done: 50, total: 100, unit: 'percent', elapsedMs: 4_000, columns: 80 })).toMatch(
      /^processing \[#+-+\]  50%  ETA 0:04$/,
    );
  });

  it('redraws in place on a terminal, at most every interval, and erases itself when finished', () => {
    let now = 0;
    const tty = fakeTty();
    const bar = new ProgressBar(tty, { label: 'feed.txt', total: 1000, intervalMs: 100, now: () => now });
    expect(bar.active).toBe(true);
    now = 50;
    bar.update(100);
    now = 120;
    bar.update(200); // within 100 ms of the first draw: skipped
    now = 200;
    bar.update(500);
    expect(tty.writes).toHaveLength(2);
    for (const w of tty.writes) expect(w.startsWith('\r\x1b[2K')).toBe(true);
    expect(tty.writes[1]).toContain(' 50%');
    bar.finish();
    expect(tty.writes[2]).toBe('\r\x1b[2K');
    bar.finish();
    expect(tty.writes).toHaveLength(3);
  });

  it('writes nothing at all when the stream is not a terminal', () => {
    const pipe = { ...fakeTty(), isTTY: false };
    const bar = new ProgressBar(pipe, { label: 'x', total: 10 });
    expect(bar.active).toBe(false);
    bar.update(5);
    bar.finish();
    expect(pipe.writes).toEqual([]);
  });
});
