import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';
import { applyAttachmentOp, expectHuntsAccounted } from '../../helpers/hunt-ops';
import { processQueued, settleRetroHunts, upload } from '../../helpers/ingest';
import { idOfType, toGlobalId } from '../../../src/common/ids/global-id';
import { ImportMode } from '../../../src/modules/ioc/ioc.enums';

/**
 * Exactness of DNS retro-hunts (#18 item 4, as #17 item 5 for addresses): random sequences of domain entries added
 * (iocAdd), removed (iocRemove) and imported (APPEND, REPLACE), ALLOW entries, DOMAIN lists attached and detached
 * (a policy left without one parses with DNS off) and device moves, each followed (sometimes) by the retro-hunts they
 * caused, leave exactly the DNS hits (and IP hits) that reprocessing every stored upload against the final lists gives.
 */
const T0 = Math.floor(Date.now() / 1000) - 7200;
const ASKED = ['www.evil.example', 'evil.example', 'x.good.evil.example', 'notevil.example', 'cdn.bad.test', 'a.b.bad.test', 'other.example', 'example'];
const ENTRIES = ['evil.example', 'good.evil.example', 'bad.test', 'b.bad.test', 'x.good.evil.example', 'other.example', 'notevil.example', 'www.evil.example'];

function capture(seed: number): string {
  const lines: string[] = [];
  for (let i = 0; i < 4; i++) {
    const name = ASKED[(seed * 3 + i * 5) % ASKED.length];
    const at = (T0 + seed * 100 + i).toFixed(6);
    lines.push(
      i === 3
        ? `${at} IP 203.0.113.9.5000 > 10.0.0.53.53: ${seed * 10 + i}+ AAAA? ${name}. (30)`
        : `${at} IP 10.0.0.${5 + (i % 2)}.${40000 + i} > 8.8.8.8.53: ${seed * 10 + i}+ A? ${name}. (34)`,
    );
  }
  lines.push(`${(T0 + seed * 100 + 9).toFixed(6)} IP 10.0.0.5.50000 > 198.51.100.7.443: Flags [S], seq 1, win 64240, length 0`);
  return lines.join('\n') + '\n';
}

/**
 * Lists start attached: b0, a0 and the IP list to p0, only the IP list to p1, whose uploads are then parsed with DNS
 * off: their questions are unknown until a DOMAIN list reaches them.
 */
const INITIAL = [
  [0, 0],
  [2, 0],
  [3, 0],
  [3, 1],
] as const;

type Op =
  | { kind: 'add'; list: number; value: number }
  | { kind: 'remove'; list: number; pick: number }
  | { kind: 'import'; list: number; values: number[]; replace: boolean }
  | { kind: 'attach' | 'detach'; list: number; policy: number }
  | { kind: 'move'; device: number; policy: number }
  | { kind: 'settle' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), list: fc.nat(2), value: fc.nat(ENTRIES.length - 1) }),
  fc.record({ kind: fc.constant('remove' as const), list: fc.nat(2), pick: fc.nat(20) }),
  fc.record({
    kind: fc.constant('import' as const),
    list: fc.nat(2),
    values: fc.uniqueArray(fc.nat(ENTRIES.length - 1), { maxLength: 4 }),
    replace: fc.boolean(),
  }),
  fc.record({ kind: fc.constantFrom('attach' as const, 'detach' as const), list: fc.nat(2), policy: fc.nat(1) }),
  fc.record({ kind: fc.constant('move' as const), device: fc.nat(1), policy: fc.nat(1) }),
  fc.constant({ kind: 'settle' as const }),
);

describe.each(drivers)('DNS retro-hunt equals reprocessing from scratch (%s)', (driver) => {
  let t: TestApp;
  let dir: string;
  let q: (query: string, v?: Record<string, unknown>) => Promise<any>;
  const policies: string[] = [];
  const lists: string[] = [];
  const devices: string[] = [];

  const settle = () => settleRetroHunts(t.services);
  const rows = async (sql: string) =>
    (await t.dataSource.query(sql)).map((r: Record<string, unknown>) =>
      Object.values(r)
        .map((v) => (v == null ? null : String(v)))
        .join('|'),
    );
  const snapshot = async () => ({
    dns: await rows(
      `SELECT upload_id, device_id, internal_ip, qname, qtype, hit_count, direction, first_seen_at, ioc_domain_id, ioc_list_id, matched_name, severity
         FROM dns_hit ORDER BY upload_id, internal_ip, qname, qtype`,
    ),
    ip: await rows(`SELECT upload_id, external_key, ioc_id, ioc_list_id FROM flow_hit ORDER BY upload_id, external_key, ioc_id`),
  });

  async function reset() {
    const db = (sql: string, params: unknown[] = []) => t.dataSource.query(sql, params);
    await db(`DELETE FROM retro_hunt`);
    await db(`DELETE FROM ioc_domain`);
    await db(`UPDATE ioc_list SET revision = revision + 1, entry_count = 0 WHERE entry_kind = 'DOMAIN'`);
    await db(`DELETE FROM policy_ioc_list`);
    for (const [list, policy] of INITIAL) {
      await db(`INSERT INTO policy_ioc_list (policy_id, ioc_list_id, created_at) VALUES (?, ?, ?)`, [
        idOfType(policies[policy], 'Policy'),
        idOfType(lists[list], 'IocList'),
        Date.now(),
      ]);
    }
    await db(`UPDATE policy SET revision = revision + 1`);
    for (const [i, d] of devices.entries()) await db(`UPDATE device SET policy_id = ? WHERE id = ?`, [idOfType(policies[i], 'Policy'), idOfType(d, 'Device')]);
    await db(`UPDATE log_upload SET status = 'QUEUED', retro_hunt_id = NULL, lease_owner = NULL, lease_expires_at = NULL`);
    await processQueued(t.services);
  }

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-dns-hunt-'));
    t = await createTestApp(driver);
    q = async (query, v = {}) => ok(await t.gql(query, v));
    for (const name of ['p0', 'p1'])
      policies.push((await q(`mutation($n: String!) { policyCreate(input: { name: $n }) { policy { id } } }`, { n: name })).policyCreate.policy.id);
    for (const [name, kind, entryKind] of [
      ['b0', 'BLOCK', 'DOMAIN'],
      ['b1', 'BLOCK', 'DOMAIN'],
      ['a0', 'ALLOW', 'DOMAIN'],
      ['ips', 'BLOCK', 'IP'],
    ]) {
      lists.push(
        (
          await q(
            `mutation($n: String!, $k: IocListKind!, $e: IocEntryKind!) {
               iocListCreate(input: { name: $n, kind: $k, entryKind: $e, severity: 4, category: MALWARE }) { iocList { id } } }`,
            { n: name, k: kind, e: entryKind },
          )
        ).iocListCreate.iocList.id,
      );
    }
    await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { userErrors { message } } }`, { i: { list: lists[3], entries: [{ value: '198.51.100.7' }] } });
    for (const [i, name] of ['d0', 'd1'].entries()) {
      devices.push(
        (
          await q(
            `mutation($n: String!, $p: ID!, $ip: String!) { deviceCreate(input: { nickname: $n, ipType: STATIC, ipAddress: $ip, policy: $p }) { device { id } } }`,
            { n: name, p: policies[i], ip: `93.184.216.${34 + i}` },
          )
        ).deviceCreate.device.id,
      );
    }
    for (let u = 0; u < 5; u++) expect(ok(await upload(t, capture(u), { deviceNickname: `d${u % 2}` })).logUploadCreate.userErrors).toEqual([]);
    await processQueued(t.services);
  });
  afterAll(async () => {
    await t.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it(
    'after any sequence of domain-list changes the DNS hits equal a reprocessing of every upload',
    async () => {
      let sawDnsHits = false;
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 8 }), async (ops) => {
          await reset();
          for (const op of ops) {
            if (op.kind === 'add') {
              const r = await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { userErrors { message } } }`, {
                i: { list: lists[op.list], entries: [{ value: ENTRIES[op.value] }] },
              });
              expect(r.iocAdd.userErrors).toEqual([]);
            } else if (op.kind === 'remove') {
              const ids: Array<{ id: number | string }> = await t.dataSource.query(`SELECT id FROM ioc_domain WHERE list_id = ? ORDER BY id`, [
                idOfType(lists[op.list], 'IocList'),
              ]);
              if (ids.length) {
                const r = await q(`mutation($i: IocRemoveInput!) { iocRemove(input: $i) { removedDomains { name } userErrors { message } } }`, {
                  i: { ids: [toGlobalId('IocDomain', Number(ids[op.pick % ids.length].id))] },
                });
                expect(r.iocRemove.removedDomains).toHaveLength(1);
              }
            } else if (op.kind === 'import') {
              const file = path.join(dir, `feed-${Date.now()}-${Math.random()}.txt`);
              fs.writeFileSync(file, op.values.map((v) => ENTRIES[v]).join('\n') + '\n');
              const mode = op.replace ? ImportMode.REPLACE : ImportMode.APPEND;
              const listId = idOfType(lists[op.list], 'IocList');
              const [{ n }] = await t.dataSource.query(`SELECT COUNT(*) AS n FROM ioc_domain WHERE list_id = ?`, [listId]);
              const r = await t.services.feedImport.importFile(t.accountId, listId, { path: file, bytes: fs.statSync(file).size }, mode);
              // A REPLACE with no entry is refused while the list holds entries (it would empty it): nothing changes.
              if (op.replace && op.values.length === 0 && Number(n) > 0) expect(r).toMatchObject({ ok: false, errors: [{ code: 'INVALID' }] });
              else expect(r.ok).toBe(true);
            } else if (op.kind === 'attach' || op.kind === 'detach' || op.kind === 'move') {
              await applyAttachmentOp(q, op, { policies, lists, devices });
            } else await settle();
          }
          await settle();
          await expectHuntsAccounted(t.dataSource);
          const hunted = await snapshot();
          if (hunted.dns.length) sawDnsHits = true;
          // From scratch: every upload processed again against the lists as they are now.
          await t.dataSource.query(`UPDATE log_upload SET status = 'QUEUED', lease_owner = NULL, lease_expires_at = NULL`);
          await processQueued(t.services);
          expect(await snapshot()).toEqual(hunted);
        }),
        {
          // PROPERTY_RUNS: more runs, to search for a rare sequence (PROPERTY_SEED replays one).
          numRuns: process.env.PROPERTY_RUNS ? Number(process.env.PROPERTY_RUNS) : 30,
          seed: process.env.PROPERTY_SEED ? Number(process.env.PROPERTY_SEED) : undefined,
          // Rare at random: a DOMAIN list with an entry reaching uploads parsed with DNS off (their questions unknown),
          // and a policy losing its last DOMAIN list and getting one again.
          examples: [
            [
              [
                { kind: 'add', list: 1, value: 0 },
                { kind: 'attach', list: 1, policy: 1 },
              ],
            ],
            [
              [
                { kind: 'add', list: 0, value: 2 },
                { kind: 'detach', list: 0, policy: 0 },
                { kind: 'detach', list: 2, policy: 0 },
                { kind: 'settle' },
                { kind: 'add', list: 0, value: 0 },
                { kind: 'attach', list: 0, policy: 0 },
              ],
            ],
            // A REPLACE with no entry into a list that has one: refused, the list and its hits unchanged.
            [
              [
                { kind: 'import', list: 0, values: [0], replace: false },
                { kind: 'import', list: 0, values: [], replace: true },
                { kind: 'attach', list: 0, policy: 0 },
              ],
            ],
          ],
        },
      );
      // The runs were not all vacuous.
      expect(sawDnsHits).toBe(true);
    },
    300_000 * Math.max(1, Number(process.env.PROPERTY_RUNS ?? 30) / 30),
  );
});
