import http from 'node:http';
import { AddressInfo } from 'node:net';
import { ApolloClient, gql, InMemoryCache } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { createClient, Client } from 'graphql-ws';
import WebSocket from 'ws';
import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { processQueued, settleRetroHunts, upload } from '../../helpers/ingest';
import { idOfType } from '../../../src/common/ids/global-id';
import { ChildServer, killChildren, startChild } from '../../helpers/child-process';
import { attachSubscriptions } from '../../../src/app/subscriptions';
import { createSchema } from '../../../src/graphql/schema';

/**
 * uploadProgress and hitsFound over graphql-ws, as a frontend subscribes: Apollo Client's GraphQLWsLink with the
 * API key in the connection parameters. On MySQL the upload is processed by another server process (a child
 * sharing the database, its worker on) while this process serves the subscription: events cross processes.
 * On SQLite (one process) this process's worker code processes it.
 */
const BAD = ['198.51.100.7', '203.0.113.9'];

describe.each(drivers)('subscriptions over graphql-ws (%s)', (driver) => {
  let t: TestApp;
  let server: http.Server;
  let subs: { close(): Promise<void> };
  let url: string;
  let child: ChildServer | null = null;
  let list: string;
  const clients: Client[] = [];

  const apollo = (apiKey: string) => {
    const ws = createClient({ url, connectionParams: { apiKey }, webSocketImpl: WebSocket, retryAttempts: 0 });
    clients.push(ws);
    return new ApolloClient({ link: new GraphQLWsLink(ws), cache: new InMemoryCache() });
  };

  /** Subscribes and collects: `events` grows with each result, `done` settles when the server completes it. */
  const collect = (client: ApolloClient, query: string, variables: Record<string, unknown>) => {
    const events: any[] = [];
    const errors: unknown[] = [];
    let sub: { unsubscribe(): void } | null = null;
    const done = new Promise<void>((resolve) => {
      sub = client.subscribe({ query: gql(query), variables, fetchPolicy: 'no-cache' }).subscribe({
        next: (r) => (r.error ? errors.push(r.error) : events.push(r.data)),
        error: (e) => {
          errors.push(e);
          resolve();
        },
        complete: () => resolve(),
      });
    });
    return { events, errors, done, stop: () => sub?.unsubscribe() };
  };

  const until = async (cond: () => boolean, what: string) => {
    for (let i = 0; i < 600 && !cond(); i++) await new Promise((r) => setTimeout(r, 50));
    if (!cond()) throw new Error(`timed out waiting for ${what}`);
  };

  beforeAll(async () => {
    t = await createTestApp(driver, { LIVE_POLL_MS: '50' });
    server = http.createServer(t.http.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    subs = attachSubscriptions(server, await createSchema(), t.services, t.services.logger);
    url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
    const policy = ok(await t.gql(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    list = ok(await t.gql(`mutation { iocListCreate(input: { name: "bad", kind: BLOCK, severity: 4, category: MALWARE }) { iocList { id } } }`)).iocListCreate
      .iocList.id;
    ok(await t.gql(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list, entries: BAD.map((value) => ({ value })) } }));
    ok(await t.gql(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } }));
    ok(
      await t.gql(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { device { id } } }`, {
        i: { nickname: 'hq', ipType: 'STATIC', ipAddress: '8.8.8.8', policy },
      }),
    );
    if (driver === 'mysql') child = await startChild({ DATABASE_URL: (t.config.database as { url: string }).url, WORKER_POLL_MS: '50' });
  });
  afterAll(async () => {
    for (const c of clients) await c.dispose();
    if (child) await killChildren([child]);
    t.services.live.feed.close();
    await subs.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await t.close();
  });

  // Each test ends its hitsFound subscriptions (stopped, completed or their connection closed): they unregister at
  // once, so the next test counts its own from zero.
  afterEach(async () => {
    await until(() => t.services.live.feed.hitListeners() === 0, "the test's hitsFound subscriptions to unregister");
  });

  const capture = (n: number) =>
    Array.from(
      { length: n },
      (_, i) => `${1717000000 + i}.000000 IP 10.0.0.${1 + (i % 3)}.${40000 + i} > ${BAD[i % 2]}.443: Flags [S], seq 1, win 1, length 0`,
    ).join('\n') + '\n';

  const process = async () => {
    // MySQL: the other process's worker does it.
    if (driver === 'sqlite') await processQueued(t.services);
  };

  it('follows an upload to COMPLETED and reports its hits, scoped to the account and filter', async () => {
    const admin = apollo(t.keys.admin);
    const found = collect(admin, `subscription($f: HitsFoundFilter) { hitsFound(filter: $f) { hitCount maxSeverity logUpload { id hits } } }`, {
      f: { minSeverity: 4 },
    });
    const none = collect(admin, `subscription { hitsFound(filter: { minSeverity: 5 }) { hitCount } }`, {});
    const other = collect(apollo(t.keys.otherAdmin), `subscription { hitsFound { hitCount } }`, {});
    // Connected and subscribed before the upload (the subscriptions see hits written from then on): wait until
    // the server registered all three, their cursor set; a fixed pause lost the race on a loaded machine.
    await until(() => t.services.live.feed.hitListeners() === 3, 'the hitsFound subscriptions to register');

    const id = ok(await upload(t, capture(12), { deviceNickname: 'hq' })).logUploadCreate.logUpload.id;
    const progress = collect(admin, `subscription($id: ID!) { uploadProgress(id: $id) { id status hits } }`, { id });
    const foreign = collect(apollo(t.keys.otherAdmin), `subscription($id: ID!) { uploadProgress(id: $id) { id status } }`, { id });
    await new Promise((r) => setTimeout(r, 200));
    await process();

    await progress.done;
    expect(progress.errors).toEqual([]);
    const statuses = progress.events.map((e) => e.uploadProgress.status);
    expect(statuses[statuses.length - 1]).toBe('COMPLETED');
    expect(progress.events[progress.events.length - 1].uploadProgress).toEqual({ __typename: 'LogUpload', id, status: 'COMPLETED', hits: 12 });
    // Another account's key sees nothing of it: the subscription ends without an event.
    await foreign.done;
    expect(foreign.events).toEqual([]);

    await until(() => found.events.length === 1, 'hitsFound');
    expect(found.events[0].hitsFound).toMatchObject({ hitCount: 12, maxSeverity: 4, logUpload: { id, hits: 12 } });
    // Subscribers of the same account whose filter excludes the hits, and of another account, got nothing.
    await new Promise((r) => setTimeout(r, 300));
    expect(none.events).toEqual([]);
    expect(other.events).toEqual([]);
    found.stop();
    none.stop();
    other.stop();
  });

  it('tells of a re-run only when it finds hits the upload did not have', async () => {
    const before = t.services.live.feed.hitListeners();
    const all = collect(apollo(t.keys.admin), `subscription { hitsFound { hitCount ipHitCount logUpload { id } } }`, {});
    // Stopped however the test ends: a subscription left open would hold up every test after it (afterEach).
    try {
      await until(() => t.services.live.feed.hitListeners() === before + 1, 'the hitsFound subscription to register');
      const ofUpload = (id: string) => all.events.map((e) => e.hitsFound).filter((h) => h.logUpload.id === id);
      // Two connections with a listed address, two with one listed later.
      const LATER = '192.0.2.201';
      const text =
        [BAD[0], BAD[0], LATER, LATER]
          .map((to, i) => `${1717200000 + i}.000000 IP 10.0.0.9.${41000 + i} > ${to}.443: Flags [S], seq 1, win 1, length 0`)
          .join('\n') + '\n';
      const id = ok(await upload(t, text, { deviceNickname: 'hq' })).logUploadCreate.logUpload.id;
      await process();
      await until(() => ofUpload(id).length === 1, 'hitsFound for the upload');
      expect(ofUpload(id)[0]).toMatchObject({ hitCount: 2, ipHitCount: 2 });

      const uploadId = idOfType(id, 'LogUpload');
      const changes = async () =>
        (await t.dataSource.query(`SELECT found FROM hit_change WHERE upload_id = ? AND kind IS NULL ORDER BY revision`, [uploadId])) as any[];
      const changed = async (n: number) => {
        for (let i = 0; i < 600 && (await changes()).length < n; i++) await new Promise((r) => setTimeout(r, 50));
        return (await changes()).map((c) => c.found);
      };
      // A reprocess finds the same two hits: written again, no event.
      const runs = (await changes()).length;
      // On MySQL a hunt of an earlier test may have queued the upload again (the other process's worker re-runs it):
      // refused while queued or processing, the reprocess is asked for again once that run has finished.
      let refused: Array<{ message: string }> = [];
      for (let i = 0; i < 600; i++) {
        refused = ok(await t.gql(`mutation($i: LogUploadReprocessInput!) { logUploadReprocess(input: $i) { userErrors { message } } }`, { i: { id } }))
          .logUploadReprocess.userErrors;
        if (!(driver === 'mysql' && refused.length === 1 && /already; reprocess it once it has finished/.test(refused[0].message))) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(refused).toEqual([]);
      await process();
      // (On MySQL a hunt of an earlier test may re-run it too: that finds nothing new either.)
      const rerun = (await changed(runs + 1)).slice(runs);
      expect(rerun.length).toBeGreaterThan(0);
      expect(rerun.every((f) => f === 0)).toBe(true);
      await new Promise((r) => setTimeout(r, 400));
      expect(ofUpload(id)).toHaveLength(1);

      // The address listed now: the retro-hunt's re-run finds two hits the upload did not have, and tells of them.
      ok(await t.gql(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list, entries: [{ value: LATER }] } }));
      if (driver === 'sqlite') await settleRetroHunts(t.services);
      await until(() => ofUpload(id).length === 2, 'hitsFound for the re-run');
      expect(ofUpload(id)[1]).toMatchObject({ hitCount: 4, ipHitCount: 4 });
      expect((await changes()).map((c) => c.found).filter((f) => f !== 0)).toEqual([2, 2]);
      expect(all.errors).toEqual([]);
    } finally {
      all.stop();
    }
  });

  it('hitsFound counts DNS hits too: apart in dnsHitCount, chosen with kinds, filtered by direction', async () => {
    const policy = ok(await t.gql(`{ devices(first: 1) { edges { node { policy { id } } } } }`)).devices.edges[0].node.policy.id;
    const names = ok(
      await t.gql(
        `mutation { iocListCreate(input: { name: "bad names", kind: BLOCK, entryKind: DOMAIN, severity: 5, category: C2_BOTNET }) { iocList { id } } }`,
      ),
    ).iocListCreate.iocList.id;
    ok(await t.gql(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list: names, entries: [{ value: 'evil.example' }] } }));
    ok(await t.gql(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [names] } }));

    // Listeners of the test before may not have been removed yet (a generator ends at its next event).
    const before = t.services.live.feed.hitListeners();
    const admin = apollo(t.keys.admin);
    const FIELDS = `hitCount ipHitCount dnsHitCount maxSeverity logUpload { id }`;
    const all = collect(admin, `subscription { hitsFound { ${FIELDS} } }`, {});
    const dns = collect(admin, `subscription { hitsFound(filter: { kinds: [DNS] }) { ${FIELDS} } }`, {});
    const ip = collect(admin, `subscription { hitsFound(filter: { kinds: [IP] }) { ${FIELDS} } }`, {});
    const inbound = collect(admin, `subscription { hitsFound(filter: { kinds: [DNS], directions: [INBOUND] }) { ${FIELDS} } }`, {});
    await until(() => t.services.live.feed.hitListeners() === before + 4, 'the hitsFound subscriptions to register');

    const ofUpload = (c: { events: any[] }, id: string) => c.events.map((e) => e.hitsFound).filter((h) => h.logUpload.id === id);
    // Two questions for listed names from one inside host (two DNS hits), no listed address: DNS only.
    const dnsOnly =
      [
        '1717100000.000000 IP 10.0.0.5.40000 > 9.9.9.9.53: 4242+ A? www.evil.example. (34)',
        '1717100000.010000 IP 9.9.9.9.53 > 10.0.0.5.40000: 4242 1/0/0 A 192.0.2.80 (50)',
        '1717100001.000000 IP 10.0.0.5.40001 > 9.9.9.9.53: 4243+ A? evil.example. (30)',
      ].join('\n') + '\n';
    const first = ok(await upload(t, dnsOnly, { deviceNickname: 'hq' })).logUploadCreate.logUpload.id;
    await process();
    // And one of both kinds: a listed name asked, and a connection with a listed address.
    const mixed = `1717100100.000000 IP 10.0.0.6.40002 > 9.9.9.9.53: 4244+ AAAA? cdn.evil.example. (34)\n${capture(1)}`;
    const second = ok(await upload(t, mixed, { deviceNickname: 'hq' })).logUploadCreate.logUpload.id;
    await process();

    await until(() => ofUpload(all, second).length === 1 && ofUpload(dns, second).length === 1 && ofUpload(ip, second).length === 1, 'hitsFound');
    const upload1 = { logUpload: { __typename: 'LogUpload', id: first } };
    const upload2 = { logUpload: { __typename: 'LogUpload', id: second } };
    expect(ofUpload(all, first)).toEqual([{ __typename: 'HitsFoundEvent', hitCount: 2, ipHitCount: 0, dnsHitCount: 2, maxSeverity: 5, ...upload1 }]);
    expect(ofUpload(dns, first)).toMatchObject([{ hitCount: 2, ipHitCount: 0, dnsHitCount: 2, maxSeverity: 5 }]);
    expect(ofUpload(all, second)).toMatchObject([{ hitCount: 2, ipHitCount: 1, dnsHitCount: 1, maxSeverity: 5, ...upload2 }]);
    expect(ofUpload(dns, second)).toMatchObject([{ hitCount: 1, ipHitCount: 0, dnsHitCount: 1, maxSeverity: 5 }]);
    expect(ofUpload(ip, second)).toMatchObject([{ hitCount: 1, ipHitCount: 1, dnsHitCount: 0, maxSeverity: 4 }]);
    // An upload with DNS hits only is no event for IP hits; the questions came from inside: none INBOUND.
    await new Promise((r) => setTimeout(r, 300));
    expect(ofUpload(ip, first)).toEqual([]);
    expect(ofUpload(inbound, first).concat(ofUpload(inbound, second))).toEqual([]);
    for (const c of [all, dns, ip, inbound]) {
      expect(c.errors).toEqual([]);
      c.stop();
    }
  });

  /** A raw graphql-ws client: its closes are recorded. */
  const raw = (apiKey: string, at = url) => {
    const closes: Array<{ code: number; reason: string }> = [];
    const c = createClient({
      url: at,
      connectionParams: { apiKey },
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      lazy: false,
      // Its closes are recorded (above): not printed too.
      onNonLazyError: () => undefined,
      on: { closed: (e) => closes.push({ code: (e as { code: number }).code, reason: String((e as { reason?: string }).reason) }) },
    });
    clients.push(c);
    return { c, closes };
  };
  /** One subscription's first outcome: its first result, its error, or 'completed'. */
  const first = (c: Client, query: string, variables: Record<string, unknown> = {}) =>
    new Promise<any>((resolve) =>
      c.subscribe({ query, variables }, { next: (r) => resolve(r), error: (e) => resolve({ error: e }), complete: () => resolve('completed') }),
    );

  it('cuts off a key revoked while it is subscribed: nothing more is sent, and it can subscribe no more', async () => {
    const made = ok(await t.gql(`mutation { apiKeyCreate(input: { name: "dashboard tab", role: ANALYST }) { apiKey { id } secret } }`)).apiKeyCreate;
    const before = t.services.live.feed.hitListeners();
    const { c, closes } = raw(made.secret);
    const got: unknown[] = [];
    c.subscribe({ query: `subscription { hitsFound { hitCount } }` }, { next: (r) => got.push(r), error: () => undefined, complete: () => undefined });
    const watcher = collect(apollo(t.keys.admin), `subscription { hitsFound { hitCount logUpload { id } } }`, {});
    await until(() => t.services.live.feed.hitListeners() === before + 2, 'both subscriptions to register');

    ok(await t.gql(`mutation($i: ApiKeyRevokeInput!) { apiKeyRevoke(input: $i) { userErrors { message } } }`, { i: { id: made.apiKey.id } }));
    const id = ok(await upload(t, capture(4), { deviceNickname: 'hq' })).logUploadCreate.logUpload.id;
    await process();
    // The event reached the account's other subscriber; the revoked key's connection was closed instead.
    await until(() => watcher.events.some((e) => e.hitsFound.logUpload.id === id), 'hitsFound for the admin');
    await until(() => closes.length > 0, 'the revoked connection to close');
    expect(got).toEqual([]);
    expect(closes[0].code).toBe(4403);

    // Revoked by another process (its row changed in the database, no word to this one): found at the next event.
    const elsewhere = ok(await t.gql(`mutation { apiKeyCreate(input: { name: "second tab", role: ANALYST }) { apiKey { id } secret } }`)).apiKeyCreate;
    const before2 = t.services.live.feed.hitListeners();
    const second = raw(elsewhere.secret);
    const got2: unknown[] = [];
    second.c.subscribe({ query: `subscription { hitsFound { hitCount } }` }, { next: (r) => got2.push(r), error: () => undefined, complete: () => undefined });
    await until(() => t.services.live.feed.hitListeners() === before2 + 1, 'the subscription to register');
    await t.dataSource.query(`UPDATE api_key SET revoked_at = ? WHERE id = ?`, [Date.now(), idOfType(elsewhere.apiKey.id, 'ApiKey')]);
    // Past the second a connection's key counts as checked.
    await new Promise((r) => setTimeout(r, 1_100));
    const id2 = ok(await upload(t, capture(5), { deviceNickname: 'hq' })).logUploadCreate.logUpload.id;
    await process();
    await until(() => watcher.events.some((e) => e.hitsFound.logUpload.id === id2), 'hitsFound for the admin');
    await until(() => second.closes.length > 0, 'the connection of the key revoked elsewhere to close');
    expect(got2).toEqual([]);
    expect(second.closes[0].code).toBe(4403);
    watcher.stop();
  });

  it('closes a connection whose key cannot be checked (the database failing) with 1013, and sends it nothing', async () => {
    const { c, closes } = raw(t.keys.analyst);
    const got: unknown[] = [];
    c.subscribe({ query: `subscription { hitsFound { hitCount } }` }, { next: (r) => got.push(r), error: () => undefined, complete: () => undefined });
    const watcher = collect(apollo(t.keys.admin), `subscription { hitsFound { hitCount logUpload { id } } }`, {});
    await until(() => t.services.live.feed.hitListeners() === 2, 'both subscriptions to register');
    // Past the second a connection's key counts as checked; then the lookup fails (the database dropped).
    await new Promise((r) => setTimeout(r, 1_100));
    const authenticate = t.services.accounts.authenticate.bind(t.services.accounts);
    const spy = jest
      .spyOn(t.services.accounts, 'authenticate')
      .mockImplementation((secret) => (secret === t.keys.analyst ? Promise.reject(new Error('connection lost')) : authenticate(secret)));
    try {
      const id = ok(await upload(t, capture(6), { deviceNickname: 'hq' })).logUploadCreate.logUpload.id;
      await process();
      // The process serves on: the other subscriber gets the event.
      await until(() => watcher.events.some((e) => e.hitsFound.logUpload.id === id), 'hitsFound for the admin');
      await until(() => closes.length > 0, 'the unchecked connection to close');
    } finally {
      spy.mockRestore();
    }
    expect(got).toEqual([]);
    expect(closes[0].code).toBe(1013);
    watcher.stop();
  });

  it('shows an UPLOADER key only the uploads it made', async () => {
    const byAdmin = ok(await upload(t, capture(2), { deviceNickname: 'hq' })).logUploadCreate.logUpload.id;
    const byUploader = ok(await upload(t, capture(3), { deviceNickname: 'hq' }, { key: t.keys.uploader })).logUploadCreate.logUpload.id;
    await process();
    const { c } = raw(t.keys.uploader);
    // Over HTTP the admin's upload is null to this key; over the socket it is missing alike: completed, no event.
    expect(await first(c, `subscription($id: ID!) { uploadProgress(id: $id) { id hits md5 } }`, { id: byAdmin })).toBe('completed');
    // (On MySQL another process processes it: it may not be COMPLETED yet.)
    expect((await first(c, `subscription($id: ID!) { uploadProgress(id: $id) { id } }`, { id: byUploader })).data.uploadProgress).toEqual({ id: byUploader });
  });

  it('answers each event with the data as it is then, not as the subscription first loaded it', async () => {
    const policy = ok(await t.gql(`mutation { policyCreate(input: { name: "branch policy" }) { policy { id } } }`)).policyCreate.policy.id;
    ok(await t.gql(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } }));
    const device = ok(
      await t.gql(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { device { id } } }`, {
        i: { nickname: 'branch', ipType: 'STATIC', ipAddress: '8.8.4.4', policy },
      }),
    ).deviceCreate.device.id;
    const before = t.services.live.feed.hitListeners();
    const found = collect(apollo(t.keys.admin), `subscription($f: HitsFoundFilter) { hitsFound(filter: $f) { logUpload { device { nickname } } } }`, {
      f: { devices: [device] },
    });
    await until(() => t.services.live.feed.hitListeners() === before + 1, 'the subscription to register');
    ok(await upload(t, capture(2), { deviceNickname: 'branch' }));
    await process();
    await until(() => found.events.length === 1, 'the first event');
    ok(await t.gql(`mutation($i: DeviceUpdateInput!) { deviceUpdate(input: $i) { userErrors { message } } }`, { i: { id: device, nickname: 'branch-2' } }));
    ok(await upload(t, capture(3), { deviceNickname: 'branch-2' }));
    await process();
    await until(() => found.events.length === 2, 'the second event');
    expect(found.events.map((e) => e.hitsFound.logUpload.device.nickname)).toEqual(['branch', 'branch-2']);
    // Completed by the client, it stops listening at once, not when the next hits of the account are found.
    found.stop();
    await until(() => t.services.live.feed.hitListeners() === before, 'the completed subscription to unregister');
  });

  it('masks errors and holds the HTTP limits on the socket', async () => {
    const { c } = raw(t.keys.admin);
    const refusal = async (query: string, variables: Record<string, unknown> = {}) => JSON.stringify(await first(c, query, variables));
    // No "Did you mean ...?" hints: they would tell field names to a caller who may not introspect.
    const typo = await refusal(`subscription { hitsFound { hitCont } }`);
    expect(typo).toMatch(/Cannot query field/);
    expect(typo).not.toMatch(/Did you mean/);
    expect(typo).toMatch(/GRAPHQL_VALIDATION_FAILED/);
    expect(await refusal(`subscription { hitsFond { hitCount } }`)).not.toMatch(/Did you mean/);
    // More devices than a filter may list: a clear refusal, not the database's error.
    const many = Array.from({ length: 1001 }, () => 'RGV2aWNlOjE=');
    const tooManyIds = await refusal(`subscription($d: [ID!]) { hitsFound(filter: { devices: $d }) { hitCount } }`, { d: many });
    expect(tooManyIds).toMatch(/at most 1000 devices/);
    expect(tooManyIds).toMatch(/BAD_USER_INPUT/);
    expect(await refusal(`subscription { hitsFound(filter: { minSeverity: -5 }) { hitCount } }`)).toMatch(/minSeverity: 0-5/);
    // The token limit, before the document is parsed.
    const tokens = Array.from({ length: t.config.queryLimits.tokens }, () => `... on HitsFoundEvent { hitCount }`).join(' ');
    expect(await refusal(`subscription { hitsFound { ${tokens} } }`)).toMatch(/QUERY_TOO_COMPLEX/);
    // The cost limit, with the variables: a page of 100 hits under 100 more is priced as 10,000 rows and more.
    const costly = `subscription($id: ID!) { uploadProgress(id: $id) { flowHits(first: 100) { edges { node { upload { flowHits(first: 100) { edges { node { id } } } } } } } } }`;
    const priced = await refusal(costly, { id: 'TG9nVXBsb2FkOjE=' });
    expect(priced).toMatch(/Query cost limit of \d+ exceeded/);
    expect(priced).toMatch(/QUERY_TOO_COMPLEX/);
    // A subscription over HTTP: refused as a bad request, not an internal error.
    const overHttp = await t.gql(`subscription { hitsFound { hitCount } }`);
    expect(JSON.stringify(overHttp)).toMatch(/Subscriptions are served over WebSocket/);
    expect(JSON.stringify(overHttp)).toMatch(/BAD_REQUEST/);
  });

  it('bounds subscriptions per connection, connections per key, and output a client leaves unread', async () => {
    const limited = http.createServer(t.http.app);
    await new Promise<void>((resolve) => limited.listen(0, '127.0.0.1', () => resolve()));
    const services = { ...t.services, config: { ...t.services.config, live: { maxSubscriptions: 2, maxConnectionsPerKey: 2, maxBufferedBytes: 64 * 1024 } } };
    const attached = attachSubscriptions(limited, await createSchema(), services, t.services.logger);
    const at = `ws://127.0.0.1:${(limited.address() as AddressInfo).port}/graphql`;
    try {
      // Two subscriptions at once on one connection; a third is refused until one completes.
      const { c } = raw(t.keys.analyst, at);
      const live: Array<() => void> = [];
      for (let i = 0; i < 2; i++)
        live.push(
          c.subscribe({ query: `subscription { hitsFound { hitCount } }` }, { next: () => undefined, error: () => undefined, complete: () => undefined }),
        );
      const third = JSON.stringify(await first(c, `subscription { hitsFound { hitCount } }`));
      expect(third).toMatch(/At most 2 subscriptions at once/);
      expect(third).toMatch(/RATE_LIMITED/);
      await until(() => t.services.live.feed.hitListeners() === 2, 'the two subscriptions to run');
      live[0]();
      await until(() => t.services.live.feed.hitListeners() === 1, 'the completed subscription to end');
      const again = first(c, `subscription { hitsFound { hitCount } }`);
      await until(() => t.services.live.feed.hitListeners() === 2, 'the new subscription to run');
      expect(await Promise.race([again, new Promise((r) => setTimeout(() => r('still running'), 300))])).toBe('still running');

      // A third connection of the same key is closed (1013, try again later); another key's is not.
      const second = raw(t.keys.analyst, at);
      await first(second.c, `subscription($id: ID!) { uploadProgress(id: $id) { id } }`, { id: 'TG9nVXBsb2FkOjk5OTk5OQ==' });
      expect(second.closes).toEqual([]);
      const extra = raw(t.keys.analyst, at);
      await until(() => extra.closes.length > 0, 'the third connection to close');
      expect(extra.closes[0].code).toBe(1013);
      const other = raw(t.keys.admin, at);
      expect(await first(other.c, `subscription($id: ID!) { uploadProgress(id: $id) { id } }`, { id: 'TG9nVXBsb2FkOjk5OTk5OQ==' })).toBe('completed');

      // A client that stops reading: subscribing on and on, its answers pile up unsent; past the bound it is cut,
      // and the server's memory is not the client's buffer.
      const ws = new WebSocket(at, 'graphql-transport-ws');
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      ws.send(JSON.stringify({ type: 'connection_init', payload: { apiKey: t.keys.otherAdmin } }));
      await new Promise((resolve) => ws.once('message', resolve));
      (ws as unknown as { _socket: { pause(): void } })._socket.pause();
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      let sent = 0;
      const sender = setInterval(() => {
        for (let i = 0; i < 500 && ws.readyState === WebSocket.OPEN; i++)
          ws.send(JSON.stringify({ id: String(++sent), type: 'subscribe', payload: { query: 'subscription { hitsFound { hitCount } }' } }));
      }, 5);
      const code = await Promise.race([closed, new Promise<string>((r) => setTimeout(() => r('not cut'), 60_000))]);
      clearInterval(sender);
      expect(code).not.toBe('not cut');
      ws.terminate();
    } finally {
      await attached.close();
      await new Promise<void>((resolve) => limited.close(() => resolve()));
    }
  });

  it('refuses a connection without a valid key, and queries over the socket', async () => {
    const bad = collect(apollo('pcd_not_a_key'), `subscription { hitsFound { hitCount } }`, {});
    await bad.done;
    expect(bad.events).toEqual([]);
    expect(String(bad.errors[0])).toMatch(/4403|Forbidden/);
    // Apollo Client never sends a query over its subscription link; a raw graphql-ws client can, and is refused.
    const raw = createClient({ url, connectionParams: { apiKey: t.keys.admin }, webSocketImpl: WebSocket, retryAttempts: 0 });
    clients.push(raw);
    const refused = await new Promise<unknown>((resolve) =>
      raw.subscribe(
        { query: `query { alertRules { id } }` },
        { next: () => resolve('answered'), error: (e) => resolve(e), complete: () => resolve('completed') },
      ),
    );
    expect(JSON.stringify(refused)).toMatch(/Only subscriptions over WebSocket/);
    // The HTTP bounds on a document's shape hold on the socket too.
    const aliases = Array.from({ length: 40 }, (_, i) => `a${i}: hitsFound { hitCount }`).join(' ');
    const tooMany = await new Promise<unknown>((resolve) =>
      raw.subscribe(
        { query: `subscription { ${aliases} }` },
        { next: () => resolve('answered'), error: (e) => resolve(e), complete: () => resolve('completed') },
      ),
    );
    expect(JSON.stringify(tooMany)).toMatch(/QUERY_TOO_COMPLEX|aliases/i);
  });
});
