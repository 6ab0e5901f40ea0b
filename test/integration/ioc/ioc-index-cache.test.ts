import { drivers } from '../../helpers/db';
import { createTestApp, TestApp } from '../../helpers/app';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { IocCategory, IocEntryKind, IocListKind } from '../../../src/modules/ioc/ioc.enums';
import { IndexCacheClosedError, IocIndexCache } from '../../../src/modules/ioc/ioc-index.cache';

describe.each(drivers)('matcher index cache (%s)', (driver) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(driver);
  });
  afterAll(() => t.close());

  it('builds from the database and is never served stale after a change commits', async () => {
    const { accountId, services } = t;
    const policy = await services.policies.create(accountId, { name: 'cache' });
    if (!policy.ok) throw new Error('policy');
    const mk = async (name: string, kind: IocListKind, severity: number) => {
      const r = await services.iocLists.create(accountId, { name, kind, severity, category: IocCategory.OTHER });
      if (!r.ok) throw new Error('list');
      return r.value.id;
    };
    const block = await mk('block', IocListKind.BLOCK, 4);
    const allow = await mk('allow', IocListKind.ALLOW, 0);
    await services.iocs.add(accountId, block, [{ value: '203.0.113.0/24' }, { value: '2001:db8:bad::/48' }]);
    await services.policies.attachIocLists(accountId, policy.value.id, [block]);

    // Two caches stand for two server processes sharing one database.
    const a = new IocIndexCache(t.dataSource);
    const b = new IocIndexCache(t.dataSource);
    let ia = await a.forPolicy(policy.value.id);
    expect(ia.rebuilt).toBe(true);
    expect(ia.index.bestBlock('203.0.113.9')?.cidr).toBe('203.0.113.0/24');
    expect(ia.index.bestBlock('2001:db8:bad::1')?.cidr).toBe('2001:db8:bad::/48');
    expect(ia.index.bestBlock('198.51.100.1')).toBeNull();
    expect((await a.forPolicy(policy.value.id)).rebuilt).toBe(false);
    expect((await b.forPolicy(policy.value.id)).rebuilt).toBe(true);

    // An entry added through the service: both caches see it on their next use.
    await services.iocs.add(accountId, block, [{ value: '198.51.100.1' }]);
    for (const cache of [a, b]) {
      const i = await cache.forPolicy(policy.value.id);
      expect(i.rebuilt).toBe(true);
      expect(i.index.bestBlock('198.51.100.1')?.cidr).toBe('198.51.100.1/32');
    }

    // Attaching an ALLOW list suppresses; changing severity shows in the match; detaching removes.
    await services.iocs.add(accountId, allow, [{ value: '203.0.113.7' }]);
    await services.policies.attachIocLists(accountId, policy.value.id, [allow]);
    ia = await a.forPolicy(policy.value.id);
    expect(ia.index.bestBlock('203.0.113.7')).toBeNull();
    expect(ia.index.bestBlock('203.0.113.8')?.list.severity).toBe(4);
    await services.iocLists.update(accountId, block, { severity: 5 });
    expect((await a.forPolicy(policy.value.id)).index.bestBlock('203.0.113.8')?.list.severity).toBe(5);
    await services.policies.detachIocLists(accountId, policy.value.id, [block]);
    expect((await a.forPolicy(policy.value.id)).index.bestBlock('203.0.113.8')).toBeNull();
  });

  it('rebuilds once an entry expires', async () => {
    const { accountId, services } = t;
    const policy = await services.policies.create(accountId, { name: 'expiry' });
    const list = await services.iocLists.create(accountId, { name: 'short', kind: IocListKind.BLOCK, severity: 2, category: IocCategory.SCANNER });
    if (!policy.ok || !list.ok) throw new Error('setup');
    const expiresAt = new Date(Date.now() + 60_000);
    await services.iocs.add(accountId, list.value.id, [{ value: '192.0.2.1', expiresAt }, { value: '192.0.2.2' }]);
    await services.policies.attachIocLists(accountId, policy.value.id, [list.value.id]);
    const cache = new IocIndexCache(t.dataSource);
    const now = Date.now();
    expect((await cache.forPolicy(policy.value.id, now)).index.bestBlock('192.0.2.1')).not.toBeNull();
    const later = expiresAt.getTime() + 1;
    const after = await cache.forPolicy(policy.value.id, later);
    expect(after.rebuilt).toBe(true);
    expect(after.index.bestBlock('192.0.2.1', later)).toBeNull();
    expect(after.index.bestBlock('192.0.2.2', later)).not.toBeNull();
  });

  // A large list's index is built on a worker thread (build-thread.ts): the event loop stays free meanwhile. The
  // thresholds are lowered here so that a few entries take that path.
  describe('builds on a thread', () => {
    let policyId: number;
    beforeAll(async () => {
      const { accountId, services } = t;
      const policy = await services.policies.create(accountId, { name: 'threaded' });
      const ips = await services.iocLists.create(accountId, { name: 'ips', kind: IocListKind.BLOCK, severity: 4, category: IocCategory.MALWARE });
      const names = await services.iocLists.create(accountId, {
        name: 'names',
        kind: IocListKind.BLOCK,
        severity: 3,
        category: IocCategory.PHISHING,
        entryKind: IocEntryKind.DOMAIN,
      });
      const allow = await services.iocLists.create(accountId, {
        name: 'ok names',
        kind: IocListKind.ALLOW,
        severity: 0,
        category: IocCategory.OTHER,
        entryKind: IocEntryKind.DOMAIN,
      });
      if (!policy.ok || !ips.ok || !names.ok || !allow.ok) throw new Error('setup');
      policyId = policy.value.id;
      await services.iocs.add(accountId, ips.value.id, [{ value: '203.0.113.0/24' }, { value: '2001:db8:bad::/48' }]);
      await services.iocs.add(accountId, names.value.id, [{ value: 'evil.example' }, { value: 'tracker.example.net' }]);
      await services.iocs.add(accountId, allow.value.id, [{ value: 'good.evil.example' }]);
      await services.policies.attachIocLists(accountId, policyId, [ips.value.id, names.value.id, allow.value.id]);
    });

    it('serves the same answers as an index built in place', async () => {
      const threaded = new IocIndexCache(t.dataSource, undefined, { minEntries: 1 });
      const inPlace = new IocIndexCache(t.dataSource);
      const now = Date.now();
      const a = await threaded.forPolicy(policyId, now);
      const b = await inPlace.forPolicy(policyId, now);
      expect(threaded.threadBuilds).toBe(2);
      expect(inPlace.threadBuilds).toBe(0);
      expect(a.index.data).toEqual(b.index.data);
      expect(a.domains?.data).toEqual(b.domains?.data);
      expect(a.index.bestBlock('203.0.113.9')?.cidr).toBe('203.0.113.0/24');
      expect(a.domains?.bestBlock('a.evil.example')?.name).toBe('evil.example');
      expect(a.domains?.bestBlock('x.good.evil.example')).toBeNull();
      expect(a.domains?.bestBlock('tracker.example.net.')?.name).toBe('tracker.example.net');
    });

    it('stops a build at close() with IndexCacheClosedError, leaving no thread behind', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'pcd-cache-thread-'));
      try {
        const script = path.join(dir, 'hang.js');
        writeFileSync(script, 'require("node:worker_threads").parentPort.on("message", () => undefined);');
        const cache = new IocIndexCache(t.dataSource, undefined, { minEntries: 1, script });
        const pending = cache.forPolicy(policyId);
        const live = (cache as unknown as { threads: { live: Set<unknown> } }).threads.live;
        while (live.size === 0) await new Promise((resolve) => setTimeout(resolve, 5));
        cache.close();
        await expect(pending).rejects.toBeInstanceOf(IndexCacheClosedError);
        expect(live.size).toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
