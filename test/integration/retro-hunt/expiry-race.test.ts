import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DataSource } from 'typeorm';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';
import { processQueued, settleRetroHunts, upload } from '../../helpers/ingest';
import { idOfType } from '../../../src/common/ids/global-id';
import { createDataSource } from '../../../src/db/data-source';
import { ImportMode } from '../../../src/modules/ioc/ioc.enums';
import { RetroHuntService } from '../../../src/modules/retro-hunt/retro-hunt.service';

/**
 * An import and the expiry check of another process at the same moment, on MariaDB (SQLite runs one write
 * transaction at a time, so the two cannot overlap there). The import moves an entry's expiry to a second from now
 * while the other process's check, its clock two seconds ahead, passes that time: whichever commits first, the entry
 * must lose its hits once it has expired (the import reads the check's clock under the lock the check takes), and
 * neither may fail on a deadlock or a lock wait.
 */
const T0 = Math.floor(Date.now() / 1000) - 3600;
const C2 = '198.51.100.7';
const CAPTURE = `${T0.toFixed(6)} IP 10.0.0.5.50000 > ${C2}.443: Flags [S], seq 1, win 64240, length 0\n`;
const ROUNDS = 8;

(drivers.includes('mysql') ? describe : describe.skip)('an import racing the expiry check of another process (mysql; skipped without TEST_MYSQL_URL)', () => {
  let t: TestApp;
  let other: DataSource;
  let dir: string;

  beforeAll(async () => {
    t = await createTestApp('mysql');
    // Its own pool of connections: to MariaDB's locks, another process.
    other = createDataSource(t.config.database);
    await other.initialize();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-expiry-race-'));
  });
  afterAll(async () => {
    await other?.destroy();
    await t?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('leaves no hit of an expired entry, whichever commits first, and neither fails', async () => {
    const q = async (query: string, v: Record<string, unknown> = {}) => ok(await t.gql(query, v));
    const policy: string = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    const listId: string = (
      await q(`mutation { iocListCreate(input: { name: "l", kind: BLOCK, severity: 5, category: C2_BOTNET, ageingGraceSeconds: 3600 }) { iocList { id } } }`)
    ).iocListCreate.iocList.id;
    const list = idOfType(listId, 'IocList')!;
    await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [listId] } });
    await q(`mutation($p: ID!) { deviceCreate(input: { nickname: "edge", ipType: STATIC, ipAddress: "93.184.216.34", policy: $p }) { device { id } } }`, {
      p: policy,
    });
    ok(await upload(t, CAPTURE, { deviceNickname: 'edge' }));
    await processQueued(t.services);
    const checker = new RetroHuntService(other, { maxUploads: 10_000, retentionDays: 0 });
    const hits = async () => Number((await t.dataSource.query(`SELECT COUNT(*) AS n FROM flow_hit`))[0].n);
    const importC2 = async () => {
      const file = path.join(dir, `feed-${Date.now()}-${Math.random()}.txt`);
      fs.writeFileSync(file, `${C2}\n`);
      const outcome = await t.services.feedImport.importFile(t.accountId, list, { path: file, bytes: fs.statSync(file).size }, ImportMode.APPEND);
      if (!outcome.ok) throw new Error(JSON.stringify(outcome));
    };
    for (let round = 0; round < ROUNDS; round++) {
      // Listed for an hour, and its hit found.
      await t.dataSource.query(`UPDATE ioc_list SET ageing_grace_seconds = 3600 WHERE id = ?`, [list]);
      await importC2();
      await settleRetroHunts(t.services);
      expect(await hits()).toBe(1);
      // Seen again with a grace of 1 s (the API's least is 60 s; what matters is where the expiry lands) while the
      // other process checks expiries up to 2 s ahead, again and again.
      await t.dataSource.query(`UPDATE ioc_list SET ageing_grace_seconds = 1 WHERE id = ?`, [list]);
      let checking = true;
      const checks = (async () => {
        let n = 0;
        while (checking || n === 0) {
          await checker.checkExpiries(Date.now() + 2_000);
          n++;
        }
        return n;
      })();
      await new Promise((r) => setTimeout(r, round * 3));
      await importC2();
      checking = false;
      expect(await checks).toBeGreaterThan(0);
      // Past the expiry and past the other process's clock: the hunts that were asked for re-judge the upload.
      await new Promise((r) => setTimeout(r, 2_100));
      await checker.checkExpiries();
      await settleRetroHunts(t.services);
      expect({ round, hits: await hits() }).toEqual({ round, hits: 0 });
    }
  }, 120_000);
});
