import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';
import { processQueued, upload } from '../../helpers/ingest';
import { idOfType } from '../../../src/common/ids/global-id';
import { ImportMode } from '../../../src/modules/ioc/ioc.enums';

/**
 * An import re-judges the stored past like any other list change (#17): APPEND and REPLACE request a retro-hunt
 * with the ranges they added and removed; past 50,000 changed entries it re-judges every upload the list reaches
 * (any address) instead of storing each range.
 */
const T0 = Math.floor(Date.now() / 1000) - 3600;
const C2 = '198.51.100.7';
const CAPTURE = `${T0.toFixed(6)} IP 10.0.0.5.50000 > ${C2}.443: Flags [S], seq 1, win 64240, length 0\n`;

describe.each(drivers)('retro-hunt after a feed import (%s)', (driver) => {
  let t: TestApp;
  let list: number;
  let policy: string;
  let dir: string;

  async function importFeed(lines: string[], mode: ImportMode) {
    const file = path.join(dir, `feed-${Date.now()}-${Math.random()}.txt`);
    fs.writeFileSync(file, lines.join('\n') + '\n');
    const outcome = await t.services.feedImport.importFile(t.accountId, list, { path: file, bytes: fs.statSync(file).size }, mode);
    if (!outcome.ok) throw new Error(JSON.stringify(outcome));
    return outcome.value;
  }
  async function settle() {
    const far = Date.now() + 60_000;
    await t.services.retroHunts.runDue(far);
    await processQueued(t.services);
    await t.services.retroHunts.runDue(far);
  }
  async function latestHunt(): Promise<{ scope: string; ranges: number; status: string }> {
    const [h] = await t.dataSource.query(`SELECT id, scope, status FROM retro_hunt ORDER BY id DESC LIMIT 1`);
    const [{ n }] = await t.dataSource.query(`SELECT COUNT(*) AS n FROM retro_hunt_range WHERE retro_hunt_id = ?`, [h.id]);
    return { scope: h.scope, ranges: Number(n), status: h.status };
  }
  const hits = async () => (await t.dataSource.query(`SELECT external_ip, found_by FROM flow_hit ORDER BY id`)).map((r: any) => [r.external_ip, r.found_by]);

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-import-hunt-'));
    t = await createTestApp(driver);
    const q = async (query: string, v: Record<string, unknown> = {}) => ok(await t.gql(query, v));
    policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    const listId = (await q(`mutation { iocListCreate(input: { name: "feed", kind: BLOCK, severity: 5, category: C2_BOTNET }) { iocList { id } } }`))
      .iocListCreate.iocList.id;
    list = idOfType(listId, 'IocList')!;
    await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [listId] } });
    await q(`mutation($p: ID!) { deviceCreate(input: { nickname: "edge", ipType: STATIC, ipAddress: "93.184.216.34", policy: $p }) { device { id } } }`, {
      p: policy,
    });
    expect(ok(await upload(t, CAPTURE, { deviceNickname: 'edge' })).logUploadCreate.userErrors).toEqual([]);
    await processQueued(t.services);
    await settle();
    expect(await hits()).toEqual([]);
  });
  afterAll(async () => {
    await t.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('APPEND finds the past hit of an added entry; REPLACE without it removes that hit', async () => {
    await importFeed(['192.0.2.1', C2, '192.0.2.2'], ImportMode.APPEND);
    expect(await latestHunt()).toMatchObject({ ranges: 3, status: 'QUEUED' });
    await settle();
    expect(await hits()).toEqual([[C2, 'RETRO_HUNT']]);

    await importFeed(['192.0.2.1', '192.0.2.2'], ImportMode.REPLACE);
    // Only what changed: the entry removed.
    expect(await latestHunt()).toMatchObject({ ranges: 1, status: 'QUEUED' });
    await settle();
    expect(await hits()).toEqual([]);
  });

  it('past 50,000 changed entries, re-judges every upload the list reaches instead of storing each range', async () => {
    const many = Array.from({ length: 50_100 }, (_, i) => `11.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    await importFeed([...many, C2], ImportMode.APPEND);
    const hunt = await latestHunt();
    expect(hunt.ranges).toBe(0);
    expect(JSON.parse(hunt.scope)).toEqual([{ lists: [list], anyAddress: true, usedBy: [idOfType(policy, 'Policy')] }]);
    await settle();
    expect(await hits()).toEqual([[C2, 'RETRO_HUNT']]);
  }, 120_000);
});
