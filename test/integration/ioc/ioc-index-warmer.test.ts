import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { generateCapture } from '../../helpers/capture';
import { captureLog, CapturedLog } from '../../helpers/logs';
import { processQueued, upload } from '../../helpers/ingest';
import { bulkInsert } from '../../../src/db/bulk';
import { cidr4 } from '../../../src/common/net/cidr';
import { idOfType } from '../../../src/common/ids/global-id';
import { IOC_COLUMNS, iocRow, lockList, touchList } from '../../../src/modules/ioc/ioc.service';
import { PolicyIndex } from '../../../src/modules/ioc/ioc-index.cache';

/** Entries past the first keyset page of an index build on either driver (10,000 on SQLite, 50,000 on MySQL). */
const FILLER = 60_000;

describe.each(drivers)('matcher index warm-up (%s)', (driver) => {
  let t: TestApp;
  let log: CapturedLog;
  const capture = generateCapture(21, 200, 2);
  // Bad servers split in two: the first half is listed at first, the second half replaces it in the race test.
  const half = Math.ceil(capture.badAddresses.length / 2);
  const early = capture.badAddresses.slice(0, half);
  const late = capture.badAddresses.slice(half);
  const flowsTo = (addresses: string[]) => {
    const set = new Set(addresses);
    return capture.text
      .toString()
      .split('\n')
      .filter((l) => / Flags \[S\],/.test(l))
      .filter((l) => set.has(l.split(' > ')[1]?.split('.').slice(0, 4).join('.'))).length;
  };

  const gql = async (q: string, v: Record<string, unknown> = {}) => ok(await t.gql(q, v));
  const createList = async (name: string, values: string[]) => {
    const list = (
      await gql(`mutation($i: IocListCreateInput!) { iocListCreate(input: $i) { iocList { id } } }`, {
        i: { name, kind: 'BLOCK', severity: 4, category: 'C2_BOTNET' },
      })
    ).iocListCreate.iocList.id as string;
    if (values.length) await addEntries(list, values);
    return list;
  };
  const addEntries = async (list: string, values: string[]) => {
    const r = (
      await gql(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added userErrors { message } } }`, {
        i: { list, entries: values.map((value) => ({ value })) },
      })
    ).iocAdd;
    expect(r.userErrors).toEqual([]);
  };
  const createPolicy = async (name: string, lists: string[]) => {
    const policy = (await gql(`mutation($n: String!) { policyCreate(input: { name: $n }) { policy { id } } }`, { n: name })).policyCreate.policy.id as string;
    const r = await gql(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, {
      i: { policy, iocLists: lists },
    });
    expect(r.policyAttachIocLists.userErrors).toEqual([]);
    return policy;
  };
  const createDevice = async (nickname: string, policy: string, ip: string) =>
    (
      await gql(
        `mutation($n: String!, $p: ID!, $ip: String!) { deviceCreate(input: { nickname: $n, ipType: STATIC, ipAddress: $ip, policy: $p }) { device { id } userErrors { message } } }`,
        {
          n: nickname,
          p: policy,
          ip,
        },
      )
    ).deviceCreate.device.id as string;
  /** What the processor got from the cache for each job: a spy on forPolicy. */
  const watchIndexUse = () => {
    const uses: PolicyIndex[] = [];
    const original = t.services.iocIndexes.forPolicy.bind(t.services.iocIndexes);
    const spy = jest.spyOn(t.services.iocIndexes, 'forPolicy').mockImplementation(async (...args) => {
      const r = await original(...args);
      uses.push(r);
      return r;
    });
    return { uses, restore: () => spy.mockRestore() };
  };
  /** `n` filler entries straight into a list (as a feed import would), revision bumped in the same transaction. */
  const fill = async (listId: number, n: number, firstOctet: number) => {
    await t.dataSource.transaction(async (em) => {
      const list = await lockList(em, t.accountId, listId);
      if (!list) throw new Error('no list');
      const rows: unknown[][] = [];
      for (let i = 0; i < n; i++) rows.push(iocRow(t.accountId, listId, cidr4(((firstOctet << 24) | i) >>> 0, 32), null, null, Date.now()));
      await bulkInsert(em, 'ioc', IOC_COLUMNS, rows);
      await touchList(em, list, n, false);
    });
  };

  beforeAll(async () => {
    log = captureLog('info');
    t = await createTestApp(driver, {}, { logger: log.logger });
    t.services.indexWarmer.start();
  });
  afterAll(() => t.close());

  it('rebuilds the index of an affected policy in the background after each change, so the next upload finds it built', async () => {
    const { services } = t;
    const list = await createList('warm', early);
    const policy = await createPolicy('warm', [list]);
    const unused = await createPolicy('no devices', [list]);
    await createDevice('warm-edge', policy, '8.8.8.8');
    await services.indexWarmer.idle();
    const policyId = idOfType(policy, 'Policy') as number;
    expect(await services.iocIndexes.isFresh(policyId)).toBe(true);
    // A policy without devices is left alone: nothing would use its index.
    expect(await services.iocIndexes.isFresh(idOfType(unused, 'Policy') as number)).toBe(false);

    // A change through the API: the mutation answers at once, the index is rebuilt behind it.
    const builds = log.events('ioc_index.built').length;
    await addEntries(list, late);
    await services.indexWarmer.idle();
    expect(await services.iocIndexes.isFresh(policyId)).toBe(true);
    expect(log.events('ioc_index.built').length).toBe(builds + 1);
    expect(log.events('ioc_index.warmed').at(-1)).toMatchObject({ policy: policyId });

    const use = watchIndexUse();
    try {
      const r = ok(await upload(t, capture.text, { deviceNickname: 'warm-edge' })).logUploadCreate;
      expect(r.userErrors).toEqual([]);
      const [outcome] = await processQueued(services);
      expect(outcome).toMatchObject({ status: 'COMPLETED', hits: capture.badFlows });
      expect(use.uses.map((u) => u.rebuilt)).toEqual([false]);
    } finally {
      use.restore();
    }

    // Detaching the list (a policy change) and changing severity (a list change) are warmed too.
    await gql(`mutation($i: PolicyIocListsInput!) { policyDetachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } });
    await services.indexWarmer.idle();
    expect(await services.iocIndexes.isFresh(policyId)).toBe(true);
    expect((await services.iocIndexes.forPolicy(policyId)).index.bestBlock(early[0])).toBeNull();
    await gql(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } });
    await gql(`mutation($i: IocListUpdateInput!) { iocListUpdate(input: $i) { userErrors { message } } }`, { i: { id: list, severity: 5 } });
    await services.indexWarmer.idle();
    const after = await services.iocIndexes.forPolicy(policyId);
    expect(after.rebuilt).toBe(false);
    expect(after.index.bestBlock(early[0])?.list.severity).toBe(5);
  });

  it('logs a failed warm-up and changes nothing else: the mutation succeeds and the next upload builds the index itself', async () => {
    const { services } = t;
    const list = await createList('failing', []);
    const policy = await createPolicy('failing', [list]);
    await createDevice('failing-edge', policy, '8.8.4.4');
    await services.indexWarmer.idle();
    const policyId = idOfType(policy, 'Policy') as number;

    const failures = log.events('ioc_index.warm_failed').length;
    const broken = jest.spyOn(services.iocIndexes, 'forPolicy').mockRejectedValueOnce(new Error('database went away'));
    try {
      await addEntries(list, capture.badAddresses);
      await services.indexWarmer.idle();
    } finally {
      broken.mockRestore();
    }
    expect(log.events('ioc_index.warm_failed').slice(failures)).toMatchObject([{ level: 40, policy: policyId, err: { message: 'database went away' } }]);
    expect(await services.iocIndexes.isFresh(policyId)).toBe(false);

    const use = watchIndexUse();
    try {
      ok(await upload(t, capture.text, { deviceNickname: 'failing-edge' }));
      const [outcome] = await processQueued(services);
      expect(outcome).toMatchObject({ status: 'COMPLETED', hits: capture.badFlows });
      expect(use.uses.map((u) => u.rebuilt)).toEqual([true]);
    } finally {
      use.restore();
    }
    // The warmer still follows changes afterwards.
    await addEntries(list, ['192.0.2.55']);
    await services.indexWarmer.idle();
    expect(await services.iocIndexes.isFresh(policyId)).toBe(true);
  });

  it('an upload whose index build races a committed change matches the lists after it, never a mix', async () => {
    const { services } = t;
    const list = await createList('racing', early);
    const listId = idOfType(list, 'IocList') as number;
    await fill(listId, FILLER, 11);
    const policy = await createPolicy('racing', [list]);
    await createDevice('racing-edge', policy, '1.1.1.1');
    await services.indexWarmer.idle();
    ok(await upload(t, capture.text, { deviceNickname: 'racing-edge' }));
    // The upload builds the index (evicted here); while the build reads its second page, changes commit: the
    // early addresses go (they were on the first page), the late ones come (on the last page).
    services.iocIndexes.evict(idOfType(policy, 'Policy') as number);
    const earlyIds = (
      await t.dataSource.query(`SELECT id FROM ioc WHERE list_id = ? AND cidr IN (${early.map(() => '?').join(', ')})`, [
        listId,
        ...early.map((a) => `${a}/32`),
      ])
    ).map((r: { id: number | string }) => Number(r.id));
    expect(earlyIds).toHaveLength(early.length);
    const query = t.dataSource.query.bind(t.dataSource);
    let raced = false;
    const spy = jest.spyOn(t.dataSource, 'query').mockImplementation(async (sql: string, params?: any, runner?: any) => {
      if (!raced && /FROM ioc WHERE list_id = \?/.test(sql) && Number(params?.[1]) > 0) {
        raced = true;
        expect((await services.iocs.remove(t.accountId, earlyIds)).ok).toBe(true);
        expect(
          (
            await services.iocs.add(
              t.accountId,
              listId,
              late.map((value) => ({ value })),
            )
          ).ok,
        ).toBe(true);
      }
      // The runner too: a transaction's statements must stay on its connection.
      return query(sql, params, runner);
    });
    let outcome;
    try {
      [outcome] = await processQueued(services);
    } finally {
      spy.mockRestore();
    }
    expect(raced).toBe(true);
    expect(outcome).toMatchObject({ status: 'COMPLETED', hits: flowsTo(late) });
    expect(flowsTo(late)).toBeGreaterThan(0);
    expect(flowsTo(late)).toBeLessThan(capture.badFlows);
  });

  it('stops a warm-up in progress at once on shutdown, and a job waiting for that build is handed back', async () => {
    const { services } = t;
    const list = await createList('slow', []);
    const listId = idOfType(list, 'IocList') as number;
    await fill(listId, FILLER, 12);
    const policy = await createPolicy('slow', [list]);
    await createDevice('slow-edge', policy, '9.9.9.9');
    await services.indexWarmer.idle();
    ok(await upload(t, capture.text, { deviceNickname: 'slow-edge' }));
    const job = await services.queue.claim('test-worker', 60_000);
    if (!job) throw new Error('no job');

    // Every page of the next build takes 200 ms: the warm-up starts it, the job joins it.
    const query = t.dataSource.query.bind(t.dataSource);
    let pages = 0;
    const slow = jest.spyOn(t.dataSource, 'query').mockImplementation(async (sql: string, params?: any) => {
      if (/FROM ioc WHERE list_id = \?/.test(sql)) {
        pages++;
        await new Promise((r) => setTimeout(r, 200));
      }
      return query(sql, params);
    });
    try {
      await addEntries(list, ['192.0.2.88']);
      while (pages === 0) await new Promise((r) => setTimeout(r, 10));
      const abort = new AbortController();
      const processing = services.processor.process(job.uploadId, 'test-worker', abort.signal);
      await new Promise((r) => setTimeout(r, 50));
      let at = performance.now();
      abort.abort();
      expect(await processing).toMatchObject({ status: 'LEASE_LOST', hits: 0 });
      expect(performance.now() - at).toBeLessThan(150);
      at = performance.now();
      await services.indexWarmer.stop();
      expect(performance.now() - at).toBeLessThan(1_000);
      expect(pages).toBeLessThan(FILLER / 10_000);
    } finally {
      slow.mockRestore();
    }
    expect(log.events('ioc_index.warm_failed').filter((l) => l.level >= 50)).toEqual([]);
  });
});
