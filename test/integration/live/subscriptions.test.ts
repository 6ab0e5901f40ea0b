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
    expect(
      ok(await t.gql(`mutation($i: LogUploadReprocessInput!) { logUploadReprocess(input: $i) { userErrors { message } } }`, { i: { id } })).logUploadReprocess
        .userErrors,
    ).toEqual([]);
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
    all.stop();
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
