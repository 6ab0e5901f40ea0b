import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { generateCapture } from '../../helpers/capture';
import { turnCounter } from '../../helpers/turns';
import { TcpdumpParser } from '../../../src/modules/log-upload/parsing';
import { ParsePool } from '../../../src/modules/log-upload/parse-thread/parse-pool';
import { threadTime } from '../../../src/common/threads/thread-priority';
import { parseStoredFile, SLICE, StoredFile } from '../../../src/modules/log-upload/parse-thread/parse-stored-file';

const FIXTURE = path.resolve(__dirname, '../../fixtures/tcpdump');

/** Every fixture capture (IPv4, IPv6, skipped lines of each reason) and a generated one of several slices, as one text. */
const TEXT = Buffer.concat([
  ...['ascii', 'variants'].flatMap((dir) =>
    fs
      .readdirSync(path.join(FIXTURE, dir))
      .filter((f) => !f.includes('n_UTC'))
      .map((f) => fs.readFileSync(path.join(FIXTURE, dir, f))),
  ),
  generateCapture(3, 5000, 12).text,
]);

/** The text compressed and cut into `parts` blobs, each on an ArrayBuffer of its own (as drivers return them). */
function stored(encoding: 'gzip' | 'br', parts = 3, text = TEXT, level?: number): StoredFile {
  const packed =
    encoding === 'br' ? zlib.brotliCompressSync(text, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } }) : zlib.gzipSync(text, { level: level ?? 6 });
  const size = Math.ceil(packed.length / parts);
  const blobs: Uint8Array[] = [];
  for (let o = 0; o < packed.length; o += size) blobs.push(new Uint8Array(packed.subarray(o, o + size)));
  return { encoding, blobs, internalNetworks: ['100.64.0.0/16', '2001:db8:1::/48'], ownAddress: null };
}

/** The job each of the pool's threads holds when it is terminated (from now on), in order. */
function jobsAtTerminate(pool: ParsePool): unknown[] {
  const threads = [...(pool as unknown as { live: Set<{ worker: { terminate: () => Promise<number> }; job: unknown }> }).live];
  const atTerminate: unknown[] = [];
  for (const t of threads) {
    const terminate = t.worker.terminate.bind(t.worker);
    t.worker.terminate = () => {
      atTerminate.push(t.job);
      return terminate();
    };
  }
  return atTerminate;
}

describe('ParsePool', () => {
  let pool: ParsePool;
  beforeAll(() => {
    pool = new ParsePool({ threads: 1 });
  });
  afterAll(() => pool.close());

  it.each(['gzip', 'br'] as const)(
    'gives the same stats and connections as parsing on the main thread (%s), and takes the blobs without a copy',
    async (encoding) => {
      expect(TEXT.length).toBeGreaterThan(2 * SLICE);
      const here = await parseStoredFile(stored(encoding), () => true);
      const file = stored(encoding);
      const progress: number[] = [];
      const there = await pool.parse(file, (bytes) => {
        progress.push(bytes);
        return true;
      });
      expect(here.kind).toBe('parsed');
      if (there.kind !== 'parsed' || here.kind !== 'parsed') throw new Error(`not parsed: ${there.kind}`);
      const { thread, ...rest } = there;
      expect(rest).toEqual(here);
      // The thread's own time over the job, where the platform tells it (Linux): on a core, and waiting for one.
      if (threadTime() === null) expect(thread).toBeNull();
      else {
        expect(thread!.cpuMs).toBeGreaterThan(0);
        expect(thread!.queuedMs).toBeGreaterThanOrEqual(0);
      }
      expect(there.connections.length).toBeGreaterThan(5000);
      expect(there.connections.some((c) => c.family === 6)).toBe(true);
      expect(there.bytes).toBe(TEXT.length);
      expect(progress.length).toBeGreaterThan(2);
      expect(progress[progress.length - 1]).toBe(TEXT.length);
      // Transferred: the blobs' memory moved to the thread (detached here).
      expect(file.blobs.map((b) => b.byteLength)).toEqual(file.blobs.map(() => 0));
    },
  );

  it('copies a blob that is a view into a larger buffer, leaving that buffer intact', async () => {
    const packed = zlib.gzipSync(TEXT);
    const packet = Buffer.concat([Buffer.from('header'), packed]);
    const view = packet.subarray(6);
    const outcome = await pool.parse({ encoding: 'gzip', blobs: [view], internalNetworks: [], ownAddress: null }, () => true);
    expect(outcome).toMatchObject({ kind: 'parsed', bytes: TEXT.length });
    expect(packet.subarray(0, 6).toString()).toBe('header');
    expect(view.equals(packed)).toBe(true);
  });

  it('reports a file that does not inflate as unreadable, as the main thread does', async () => {
    const bad = (): StoredFile => ({ encoding: 'gzip', blobs: [new Uint8Array(Buffer.from('not gzip at all'))], internalNetworks: [], ownAddress: null });
    const here = await parseStoredFile(bad(), () => true);
    expect(here).toEqual({ kind: 'unreadable', message: expect.stringMatching(/header/) });
    expect(await pool.parse(bad(), () => true)).toEqual(here);
  });

  it.each(['gzip', 'br'] as const)('hands the text over in slices of SLICE bytes, however many blobs it is stored in (%s)', async (encoding) => {
    // Written blob by blob, the inflater handed over a slice per blob: a hand-off, a progress message and a turn
    // each, 30 for a 5 MB upload in blobs of BLOB_CHUNK_BYTES.
    const file = stored(encoding, 40);
    expect(file.blobs.length).toBe(40);
    const seen: number[] = [];
    const outcome = await parseStoredFile(file, (bytes) => {
      seen.push(bytes);
      return true;
    });
    expect(outcome.kind).toBe('parsed');
    const slices = Math.ceil(TEXT.length / SLICE);
    expect(seen).toEqual(Array.from({ length: slices }, (_, i) => Math.min(TEXT.length, (i + 1) * SLICE)));
  });

  it('parses on the thread while the main thread only turns: no parser call here, many turns per slice', async () => {
    const push = jest.spyOn(TcpdumpParser.prototype, 'push');
    try {
      // Stored uncompressed (gzip level 0): the parse, not the inflate, is the work.
      await parseStoredFile(stored('gzip', 1, TEXT, 0), () => true);
      const slices = push.mock.calls.length;
      expect(slices).toBeGreaterThan(2);
      push.mockClear();
      const turns = turnCounter();
      let progress = 0;
      const outcome = await pool.parse(stored('gzip', 1, TEXT, 0), () => {
        progress++;
        return true;
      });
      turns.stop();
      expect(outcome.kind).toBe('parsed');
      expect(push).not.toHaveBeenCalled();
      // A hook per slice at most (fewer when slices came faster than the loop turned).
      expect(progress).toBeGreaterThan(0);
      expect(progress).toBeLessThanOrEqual(slices);
      // On the main thread the loop turns once per slice at best; here it kept turning through every slice.
      expect(turns.now).toBeGreaterThan(10 * slices);
    } finally {
      push.mockRestore();
    }
  });

  it('keeps one hook waiting, for the newest progress, when the thread runs ahead of a busy event loop', async () => {
    const text = Buffer.concat([TEXT, TEXT, TEXT]);
    const slices = Math.ceil(text.length / SLICE);
    expect(slices).toBeGreaterThan(4);
    const progress: number[] = [];
    const outcome = await pool.parse(stored('gzip', 1, text, 0), (bytes) => {
      // The first hook keeps the event loop busy (as 20 report clients do) while the thread parses every other
      // slice: 2 s, where the whole file takes well under a second.
      if (progress.push(bytes) === 1) for (const end = Date.now() + 2_000; Date.now() < end;);
      return true;
    });
    expect(outcome.kind).toBe('parsed');
    // Every later slice's progress was queued meanwhile: one more hook (two if the messages came in over two
    // turns) reported them, the last with the whole file.
    expect(progress.length).toBeLessThanOrEqual(3);
    expect(progress[progress.length - 1]).toBe(text.length);
  });

  it('delivers the outcome without a turn of the loop for a hook still waiting for its turn: the hook runs at once', async () => {
    const text = Buffer.concat([TEXT, TEXT]);
    const progress: number[] = [];
    let immediates = -1;
    const outcome = await pool.parse(stored('gzip', 1, text, 0), (bytes) => {
      if (progress.push(bytes) === 1) {
        // The loop is busy until the thread has finished: its last progress and its outcome wait together.
        for (const end = Date.now() + 1_000; Date.now() < end;);
        // Counts the turns from here. The messages are read on the next turn, before its immediates.
        immediates = 0;
        setImmediate(() => {
          immediates++;
          setImmediate(() => immediates++);
        });
      }
      return true;
    });
    expect(outcome).toMatchObject({ kind: 'parsed', bytes: text.length });
    // The waiting hook ran, with the whole file, in the turn the outcome was read (it waited a turn before).
    expect(progress.length).toBeGreaterThan(1);
    expect(progress[progress.length - 1]).toBe(text.length);
    expect(immediates).toBe(0);
  });

  it("stops when the slice hook says so or the signal aborts, rejects with the hook's error, and the thread serves the next job", async () => {
    let calls = 0;
    expect(
      await pool.parse(stored('gzip'), () => {
        calls++;
        return false;
      }),
    ).toEqual({ kind: 'stopped' });
    expect(calls).toBe(1);
    const abort = new AbortController();
    expect(await pool.parse(stored('gzip'), () => (abort.abort(), true), abort.signal)).toEqual({ kind: 'stopped' });
    await expect(
      pool.parse(stored('gzip'), async () => {
        throw new Error('lease renewal failed');
      }),
    ).rejects.toThrow('lease renewal failed');
    expect(await pool.parse(stored('gzip'), () => true)).toMatchObject({ kind: 'parsed', bytes: TEXT.length });
    expect(pool.size).toBe(1);
  });

  it('queues jobs beyond its threads and runs them one after another', async () => {
    const outcomes = await Promise.all([1, 2, 3].map(() => pool.parse(stored('br'), () => true)));
    expect(outcomes.map((o) => o.kind === 'parsed' && o.bytes)).toEqual([TEXT.length, TEXT.length, TEXT.length]);
    expect(pool.size).toBe(1);
  });

  it('starts its threads up front when asked, and runs jobs on them side by side', async () => {
    const two = new ParsePool({ threads: 2 });
    try {
      two.start();
      expect(two.size).toBe(2);
      const outcomes = await Promise.all([1, 2, 3].map(() => two.parse(stored('gzip'), () => true)));
      expect(outcomes.map((o) => o.kind === 'parsed' && o.bytes)).toEqual([TEXT.length, TEXT.length, TEXT.length]);
      expect(two.size).toBe(2);
    } finally {
      await two.close();
    }
  });

  it('terminates a busy thread only once it has cancelled its job (a thread stopped mid-parse can abort the process)', async () => {
    const closing = new ParsePool({ threads: 1 });
    let progressed!: () => void;
    const first = new Promise<void>((r) => (progressed = r));
    const big = Buffer.concat(Array.from({ length: 8 }, () => TEXT));
    const running = closing.parse(stored('br', 3, big), () => {
      progressed();
      return true;
    });
    await first;
    // Each thread's job when it is terminated: null once the thread said its cancelled job was done.
    const atTerminate = jobsAtTerminate(closing);
    const settled = running.then(
      () => null,
      (err: Error) => err.message,
    );
    await closing.close();
    expect(await settled).toBe('The parse threads were closed.');
    expect(atTerminate).toEqual([null]);
  });

  it('terminates a thread that does not come to rest within the grace period (one stalled in a slice)', async () => {
    // Stalls 30 s after each slice: it cannot read the cancel before close() gives up on it.
    const stalled = new ParsePool({ threads: 1, script: path.resolve(__dirname, '../../helpers/slow-parse-thread.ts'), workerData: { delayMs: 30_000 } });
    const settled = stalled
      .parse(stored('gzip'), () => true)
      .then(
        () => null,
        (err: Error) => err.message,
      );
    // In its first slice's stall by now (the thread starts and parses a slice within tens of ms).
    await new Promise((r) => setTimeout(r, 1000));
    const atTerminate = jobsAtTerminate(stalled);
    await stalled.close();
    expect(await settled).toBe('The parse threads were closed.');
    // Still busy when terminated: the grace period ran out, close() did not wait for the 30 s stall.
    expect(atTerminate).toHaveLength(1);
    expect(atTerminate[0]).not.toBeNull();
    expect(stalled.size).toBe(0);
  });

  it('fails a job still running when the pool closes, and refuses new ones', async () => {
    const closing = new ParsePool({ threads: 1 });
    const running = closing.parse(stored('gzip'), () => true);
    await closing.close();
    await expect(running).rejects.toThrow('The parse threads were closed.');
    await expect(closing.parse(stored('gzip'), () => true)).rejects.toThrow('The parse threads were closed.');
  });
});
