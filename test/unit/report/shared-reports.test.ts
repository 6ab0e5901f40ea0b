import { copyRows, SharedReports } from '../../../src/modules/report/shared-reports';

/** A computation that answers when told to, counting its runs. */
function gate<T>(rows: T[]) {
  let open!: () => void;
  let fail!: (err: Error) => void;
  const runs = { n: 0 };
  const compute = () => {
    runs.n++;
    return new Promise<T[]>((resolve, reject) => {
      open = () => resolve(rows);
      fail = reject;
    });
  };
  return { compute, runs, open: () => open(), fail: (err: Error) => fail(err) };
}

describe('SharedReports', () => {
  it('runs one computation for the requests that ask the same while it runs, each taking its own copy', async () => {
    const shared = new SharedReports({ maxEntries: 0, maxRows: 100 });
    const g = gate([{ hits: 3, firstSeen: new Date(1000), ports: [443] }]);
    const takers = Array.from({ length: 20 }, () => shared.get('k', g.compute));
    g.open();
    const answers = await Promise.all(takers);
    expect(g.runs.n).toBe(1);
    expect(shared.stats).toEqual({ computed: 1, joined: 19, kept: 0 });
    for (const a of answers) expect(a).toEqual([{ hits: 3, firstSeen: new Date(1000), ports: [443] }]);
    // Copies: what one taker changes, no other sees.
    (answers[0][0] as Record<string, unknown>).kind = 'IP';
    answers[0][0].ports.push(80);
    answers[0][0].firstSeen.setTime(0);
    expect(answers[1][0]).toEqual({ hits: 3, firstSeen: new Date(1000), ports: [443] });
    // Nothing kept with maxEntries 0: the next request computes.
    const again = gate([{ hits: 4 }]);
    const next = shared.get('k', again.compute);
    again.open();
    expect(await next).toEqual([{ hits: 4 }]);
    expect(shared.size).toBe(0);
  });

  it('keeps results for later requests, and computes apart what is asked under another key', async () => {
    const shared = new SharedReports({ maxEntries: 10, maxRows: 100 });
    const a = gate([{ n: 1 }]);
    const first = shared.get('a', a.compute);
    a.open();
    await first;
    const b = gate([{ n: 2 }]);
    const other = shared.get('b', b.compute);
    b.open();
    expect(await other).toEqual([{ n: 2 }]);
    expect(await shared.get('a', () => Promise.reject(new Error('not asked')))).toEqual([{ n: 1 }]);
    expect(shared.stats).toEqual({ computed: 2, joined: 0, kept: 1 });
  });

  it('keeps no failure: every request joined to it fails, and the next computes again', async () => {
    const shared = new SharedReports({ maxEntries: 10, maxRows: 100 });
    const g = gate([{ n: 1 }]);
    const takers = [shared.get('k', g.compute), shared.get('k', g.compute)];
    g.fail(new Error('thread died'));
    for (const t of takers) await expect(t).rejects.toThrow('thread died');
    expect(g.runs.n).toBe(1);
    const again = gate([{ n: 2 }]);
    const next = shared.get('k', again.compute);
    again.open();
    expect(await next).toEqual([{ n: 2 }]);
    expect(again.runs.n).toBe(1);
    expect(shared.size).toBe(1);
  });

  it('drops the least recently used results past its count or its rows, and never keeps a result larger than its rows', async () => {
    const shared = new SharedReports({ maxEntries: 2, maxRows: 5 });
    const put = (key: string, rows: number) => shared.get(key, async () => Array.from({ length: rows }, (_, i) => ({ i })));
    /** Whether `key` is answered from a kept result (asking it keeps it, when it was not). */
    const kept = async (key: string, rows = 1) => {
      const before = shared.stats.kept;
      await put(key, rows);
      return shared.stats.kept > before;
    };
    await put('a', 1);
    await put('b', 1);
    expect(await kept('a')).toBe(true); // a is now more recent than b
    await put('c', 1); // a third result: b, the least recent, goes
    expect(await kept('a')).toBe(true);
    expect(await kept('c')).toBe(true);
    expect(await kept('b')).toBe(false); // computed again, and kept in place of a
    expect(shared.size).toBe(2);
    // Rows: c (1) and b (1) are kept; d (4) takes c's place (count), then f (2) goes over 5 rows with d: d goes.
    await put('d', 4);
    await put('f', 2);
    expect(await kept('f', 2)).toBe(true);
    expect(await kept('d', 4)).toBe(false);
    // A result of more rows than the whole bound is answered, never kept.
    expect(await put('e', 6)).toHaveLength(6);
    expect(await kept('e', 6)).toBe(false);
  });
});

describe('copyRows', () => {
  it('copies objects, arrays and Dates, and leaves numbers, strings and null as they are', () => {
    const rows = [{ a: 1, b: 'x', c: null, d: new Date(5), e: [1, { f: new Date(6) }] }];
    const copy = copyRows(rows) as typeof rows;
    expect(copy).toEqual(rows);
    expect(copy[0]).not.toBe(rows[0]);
    expect(copy[0].d).not.toBe(rows[0].d);
    expect(copy[0].e).not.toBe(rows[0].e);
    expect((copy[0].e[1] as { f: Date }).f).toBeInstanceOf(Date);
  });
});
