import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BuildThreads, BuildThreadsClosedError } from '../../../src/modules/ioc/matching/build-thread';
import { DomainIndexBuilder, NO_DOMAIN_MATCH } from '../../../src/modules/ioc/matching/domain-index';
import { IocIndexBuilder, IocListInfo } from '../../../src/modules/ioc/matching/ioc-index';

// Large indexes are built on a worker thread (build-thread.ts): what comes back must be the index an in-place build
// gives, array for array, and a thread that fails must cost the build nothing but time.

const NOW = 1_700_000_000_000;
const LISTS: IocListInfo[] = [
  { id: 11, kind: 'BLOCK', severity: 4, category: 'MALWARE' },
  { id: 12, kind: 'BLOCK', severity: 2, category: 'SPAM' },
  { id: 13, kind: 'ALLOW', severity: 0, category: 'OTHER' },
];

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** Addresses of every kind the builder treats apart: IPv4 hosts and networks, IPv6, IPv4-mapped IPv6, ::/0. */
function ipBuilder(seed: number, n: number): IocIndexBuilder {
  const r = rng(seed);
  const b = new IocIndexBuilder(LISTS, { now: NOW });
  b.addV6(1, 11, 0n, 0);
  b.addV6(2, 12, 0xffff_c0a8_0000n, 112); // ::ffff:192.168.0.0/112: stored as IPv4 192.168.0.0/16
  for (let i = 3; i < n; i++) {
    const list = LISTS[Math.floor(r() * 3)].id;
    const expires = r() < 0.1 ? NOW + (r() < 0.5 ? -1000 : 1000) : null;
    if (r() < 0.8) {
      const prefix = [32, 32, 24, 16, 8][Math.floor(r() * 5)];
      b.addV4(i, list, Math.floor(r() * 2 ** 32), prefix, expires);
    } else {
      const hi = BigInt(Math.floor(r() * 2 ** 32)) << 96n;
      b.addV6(i, list, hi | (BigInt(Math.floor(r() * 2 ** 32)) << 32n), [128, 64, 48, 32][Math.floor(r() * 4)], expires);
    }
  }
  return b;
}

function domainBuilder(seed: number, n: number, packed: boolean): DomainIndexBuilder {
  const r = rng(seed);
  const b = new DomainIndexBuilder(LISTS, { now: NOW, packed });
  const names: string[] = [];
  for (let i = 1; i <= n; i++) {
    const label = Math.floor(r() * 5000).toString(36);
    const name =
      names.length > 0 && r() < 0.3 ? `${label}.${names[Math.floor(r() * names.length)]}` : `${label}.${['com', 'net', 'co.uk'][Math.floor(r() * 3)]}`;
    names.push(name);
    b.add({ id: i, listId: LISTS[Math.floor(r() * 3)].id, name, expiresAt: r() < 0.1 ? NOW + (r() < 0.5 ? -1000 : 1000) : null });
  }
  return b;
}

function queries(seed: number): string[] {
  const b = domainBuilder(seed, 1500, false);
  const names = (b as unknown as { names: string[] }).names;
  const r = rng(seed + 1);
  return names.flatMap((n) => [n, `www.${n}`, `x${n}`, n.toUpperCase() + '.', `${Math.floor(r() * 1e6)}.example.org`]);
}

function writeScript(dir: string, name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('index builds on a worker thread', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'pcd-build-thread-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('gives the address index an in-place build gives, array for array', async () => {
    const threads = new BuildThreads({ minEntries: 1 });
    const inPlace = ipBuilder(5, 20_000).build();
    const onThread = await threads.ioc(ipBuilder(5, 20_000));
    expect(threads.threadBuilds).toBe(1);
    expect(onThread.data).toEqual(inPlace.data);
    expect(onThread.data.notes?.size).toBeGreaterThan(0);
    for (const ip of ['192.168.4.4', '10.1.2.3', '2001:db8::1', '::ffff:192.168.9.9', '8.8.8.8']) {
      expect(onThread.lookup(ip)).toEqual(inPlace.lookup(ip));
    }
  });

  it('gives the domain index an in-place build gives, and packed builders build the same in place', async () => {
    const threads = new BuildThreads({ minEntries: 1 });
    const inPlace = domainBuilder(9, 6000, false).build();
    const packedInPlace = domainBuilder(9, 6000, true).build();
    const onThread = await threads.domains(domainBuilder(9, 6000, true));
    expect(threads.threadBuilds).toBe(1);
    expect(packedInPlace.data).toEqual(inPlace.data);
    expect(onThread.data).toEqual(inPlace.data);
    expect(Buffer.isBuffer(onThread.data.pool)).toBe(true);
    const qs = queries(9);
    const a = new Int32Array(qs.length);
    const b = new Int32Array(qs.length);
    inPlace.bestBlockRows(qs, a);
    onThread.bestBlockRows(qs, b);
    expect(b).toEqual(a);
    expect(a.some((row) => row !== NO_DOMAIN_MATCH)).toBe(true);
    for (const q of qs.slice(0, 500)) expect(onThread.lookup(q)).toEqual(inPlace.lookup(q));
  });

  it('builds small indexes in place, without a thread', async () => {
    const threads = new BuildThreads({ minEntries: 50_000 });
    await threads.ioc(ipBuilder(1, 100));
    await threads.domains(domainBuilder(1, 100, true));
    expect(threads.threadBuilds).toBe(0);
  });

  it.each([
    ['throws as it loads', 'throw new Error("boom at load");', /boom at load/],
    ['exits without answering', 'process.exit(3);', /exited \(code 3\) before it answered/],
    [
      'answers with a failure',
      'require("node:worker_threads").parentPort.once("message", () => require("node:worker_threads").parentPort.postMessage({ ok: false, message: "no memory" }));',
      /no memory/,
    ],
  ])('builds in place when the thread %s, and says so', async (_what, text, reason) => {
    const failures: Error[] = [];
    const threads = new BuildThreads({
      minEntries: 1,
      script: writeScript(dir, `fail-${failures.length}-${Math.random()}.js`, text),
      onFailure: (e) => failures.push(e),
    });
    const ip = await threads.ioc(ipBuilder(3, 2000));
    expect(ip.data).toEqual(ipBuilder(3, 2000).build().data);
    const dom = await threads.domains(domainBuilder(3, 2000, true));
    expect(dom.data).toEqual(domainBuilder(3, 2000, false).build().data);
    expect(failures).toHaveLength(2);
    for (const f of failures) expect(f.message).toMatch(reason);
    expect(threads.threadBuilds).toBe(0);
  });

  it('keeps the answer when the thread throws after it (a second error event is ignored)', async () => {
    const real = path.resolve(__dirname, '../../../src/modules/ioc/matching/build-thread.ts');
    const register = require.resolve('@swc-node/register');
    const script = writeScript(
      dir,
      'late-error.js',
      `require(${JSON.stringify(register)}); const { parentPort } = require('node:worker_threads'); const { serveBuildJob } = require(${JSON.stringify(real)});
       parentPort.once('message', () => setTimeout(() => { throw new Error('late'); }, 50)); serveBuildJob(parentPort);`,
    );
    const failures: Error[] = [];
    const threads = new BuildThreads({ minEntries: 1, script, onFailure: (e) => failures.push(e) });
    const index = await threads.ioc(ipBuilder(4, 3000));
    expect(index.data).toEqual(ipBuilder(4, 3000).build().data);
    expect(threads.threadBuilds).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(failures).toEqual([]);
  });

  it('close() stops a build in progress (BuildThreadsClosedError) and ends its thread; later builds run in place', async () => {
    const script = writeScript(dir, 'hang.js', 'require("node:worker_threads").parentPort.on("message", () => undefined);');
    const threads = new BuildThreads({ minEntries: 1, script });
    const pending = threads.ioc(ipBuilder(2, 500));
    const live = (threads as unknown as { live: Set<{ worker: { threadId: number } }> }).live;
    expect(live.size).toBe(1);
    const [{ worker }] = [...live];
    const exited = new Promise<number>((resolve) => (worker as unknown as NodeJS.EventEmitter).once('exit', resolve));
    threads.close();
    await expect(pending).rejects.toBeInstanceOf(BuildThreadsClosedError);
    await exited;
    expect(live.size).toBe(0);
    const after = await threads.ioc(ipBuilder(2, 500));
    expect(after.stats.entries).toBeGreaterThan(0);
    expect(threads.threadBuilds).toBe(0);
  });
});
