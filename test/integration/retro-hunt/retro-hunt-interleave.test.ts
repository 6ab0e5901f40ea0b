import { createTestApp, ok, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';
import { processQueued, upload } from '../../helpers/ingest';
import { idOfType, toGlobalId } from '../../../src/common/ids/global-id';
import { RetroHuntUpload1764750000000 } from '../../../migrations/1764750000000-RetroHuntUpload';
import { recordRetroHuntRun } from '../../../src/modules/retro-hunt/retro-hunt.progress';

/**
 * Retro-hunt (#17 item 2) and an upload in progress: a list change whose hunt is planned while an upload is being
 * matched against the lists before the change must not miss that upload. The worker is held after it took the
 * policy's index (the old lists) while the entry is added and the hunt planned, then let go.
 */
const T0 = Math.floor(Date.now() / 1000) - 3600;
const LATE = '198.51.100.77';
const CAPTURE = `${T0.toFixed(6)} IP 10.0.0.5.50000 > ${LATE}.443: Flags [S], seq 1, win 64240, length 0\n`;
const captureTo = (ip: string, port = 50001) => `${T0.toFixed(6)} IP 10.0.0.5.${port} > ${ip}.443: Flags [S], seq 1, win 64240, length 0\n`;

describe.each(drivers)('retro-hunt and an upload in progress (%s)', (driver) => {
  let t: TestApp;
  let q: (query: string, v?: Record<string, unknown>) => Promise<any>;
  let list: string;
  const far = () => Date.now() + 60_000;

  beforeAll(async () => {
    t = await createTestApp(driver);
    q = async (query, v = {}) => ok(await t.gql(query, v));
    const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    list = (await q(`mutation { iocListCreate(input: { name: "late", kind: BLOCK, severity: 5, category: C2_BOTNET }) { iocList { id } } }`)).iocListCreate
      .iocList.id;
    await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } });
    await q(`mutation($p: ID!) { deviceCreate(input: { nickname: "edge", ipType: STATIC, ipAddress: "93.184.216.34", policy: $p }) { device { id } } }`, {
      p: policy,
    });
    await t.services.retroHunts.runDue(far());
  });
  afterAll(() => t.close());

  /** Processes the queue, running `meanwhile` once, after the first run took the policy's index and before it matches. */
  const whileIndexHeld = async (meanwhile: () => Promise<void>) => {
    const cache = t.services.iocIndexes;
    const original = cache.forPolicy.bind(cache);
    let held = false;
    const spy = jest.spyOn(cache, 'forPolicy').mockImplementation(async (...args) => {
      const index = await original(...args);
      if (!held) {
        held = true;
        await meanwhile();
      }
      return index;
    });
    try {
      return await processQueued(t.services);
    } finally {
      spy.mockRestore();
    }
  };

  it('re-queues an upload that was being matched against the old lists when the hunt was planned', async () => {
    const r = ok(await upload(t, CAPTURE, { deviceNickname: 'edge' })).logUploadCreate;
    const uploadId = idOfType(r.logUpload.id, 'LogUpload')!;
    // The worker holds the index of the lists as they were; meanwhile the entry arrives and its hunt is planned.
    const outcomes = await whileIndexHeld(async () => {
      expect((await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list, entries: [{ value: LATE }] } })).iocAdd.added).toBe(1);
      expect(await t.services.retroHunts.runDue(far())).toBe(1);
    });
    // The first run (old lists) and the hunt's re-run (new lists).
    expect(outcomes.map((o) => o.status)).toEqual(['COMPLETED', 'COMPLETED']);
    await t.services.retroHunts.runDue(far());
    const hunt = (await q(`{ retroHunts(first: 1) { edges { node { id status uploadsRerun uploadsDone hitsAdded } } } }`)).retroHunts.edges[0].node;
    expect(hunt).toMatchObject({ status: 'COMPLETED', uploadsRerun: 1, uploadsDone: 1, hitsAdded: 1 });
    const rows: any[] = await t.dataSource.query(`SELECT upload_id, external_ip, found_by, retro_hunt_id FROM flow_hit`);
    expect(rows.map((h) => [Number(h.upload_id), h.external_ip, h.found_by, Number(h.retro_hunt_id)])).toEqual([
      [uploadId, LATE, 'RETRO_HUNT', idOfType(hunt.id, 'RetroHunt')],
    ]);
    const [u] = await t.dataSource.query(`SELECT status FROM log_upload WHERE id = ?`, [uploadId]);
    expect(u.status).toBe('COMPLETED');
  });

  const add = async (value: string) =>
    expect((await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list, entries: [{ value }] } })).iocAdd.added).toBe(1);
  const uploadOf = async (text: string) => idOfType(ok(await upload(t, text, { deviceNickname: 'edge' })).logUploadCreate.logUpload.id, 'LogUpload')!;
  const status = async (id: number) => ((await t.dataSource.query(`SELECT status FROM log_upload WHERE id = ?`, [id])) as Array<{ status: string }>)[0].status;
  const newestHunt = async () =>
    (await q(`{ retroHunts(first: 1) { edges { node { status uploadsExamined uploadsRerun uploadsUpToDate uploadsDone hitsAdded } } } }`)).retroHunts.edges[0]
      .node;
  const hitsOf = async (id: number) =>
    (
      (await t.dataSource.query(`SELECT external_ip, found_by FROM flow_hit WHERE upload_id = ? ORDER BY external_ip`, [id])) as Array<Record<string, string>>
    ).map((h) => [h.external_ip, h.found_by]);

  it('leaves alone an upload matched after the change, before its hunt was planned: it stays COMPLETED, not queued again', async () => {
    await add('198.51.100.78');
    // The change's hunt waits (2 s) to coalesce; meanwhile an upload reaching the new entry is processed.
    const id = await uploadOf(captureTo('198.51.100.78'));
    expect((await processQueued(t.services)).map((o) => o.status)).toEqual(['COMPLETED']);
    expect(await hitsOf(id)).toEqual([['198.51.100.78', 'UPLOAD']]);
    expect(await t.services.retroHunts.runDue(far())).toBe(1);
    expect(await status(id)).toBe('COMPLETED');
    expect(await newestHunt()).toMatchObject({ status: 'COMPLETED', uploadsExamined: 2, uploadsRerun: 0, uploadsUpToDate: 1, uploadsDone: 0 });
    expect(await processQueued(t.services)).toEqual([]);
  });

  it('re-runs an upload whose run read the lists before a change that came while it was matched, though it finished after', async () => {
    const id = await uploadOf(captureTo('198.51.100.79', 50002));
    // Committed after the run looked for waiting hunts: its hunt is not planned yet.
    expect((await whileIndexHeld(() => add('198.51.100.79'))).map((o) => o.status)).toEqual(['COMPLETED']);
    expect(await hitsOf(id)).toEqual([]);
    expect(await t.services.retroHunts.runDue(far())).toBe(1);
    expect(await status(id)).toBe('QUEUED');
    await processQueued(t.services);
    await t.services.retroHunts.runDue(far());
    expect(await newestHunt()).toMatchObject({ status: 'COMPLETED', uploadsRerun: 1, uploadsUpToDate: 0, uploadsDone: 1, hitsAdded: 1 });
    expect(await hitsOf(id)).toEqual([['198.51.100.79', 'RETRO_HUNT']]);
  });

  it('counts one re-run for each of two hunts planned while the same upload was being matched, and no upload as deleted', async () => {
    const id = await uploadOf(captureTo('198.51.100.82', 50005) + captureTo('198.51.100.83', 50006));
    const hunts: number[] = [];
    // Two changes, each with its own hunt planned while the first run holds the lists as they were: both wait for
    // the upload's next run, which sees both changes.
    const outcomes = await whileIndexHeld(async () => {
      for (const ip of ['198.51.100.82', '198.51.100.83']) {
        await add(ip);
        expect(await t.services.retroHunts.runDue(far())).toBe(1);
        hunts.push(Number((await t.dataSource.query(`SELECT MAX(id) AS id FROM retro_hunt`))[0].id));
      }
    });
    expect(outcomes.map((o) => o.status)).toEqual(['COMPLETED', 'COMPLETED']);
    await t.services.retroHunts.runDue(far());
    const rows: Array<Record<string, unknown>> = await t.dataSource.query(
      `SELECT id, status, uploads_rerun, uploads_done, uploads_purged, hits_added, summary FROM retro_hunt WHERE id IN (?, ?) ORDER BY id`,
      hunts,
    );
    expect(
      rows.map((h) => [Number(h.id), h.status, Number(h.uploads_rerun), Number(h.uploads_done), Number(h.uploads_purged), Number(h.hits_added), h.summary]),
    ).toEqual([
      [hunts[0], 'COMPLETED', 1, 1, 0, 2, null],
      [hunts[1], 'COMPLETED', 1, 1, 0, 2, null],
    ]);
    // The hits name the first hunt the re-run was for.
    const found: Array<Record<string, unknown>> = await t.dataSource.query(
      `SELECT external_ip, found_by, retro_hunt_id FROM flow_hit WHERE upload_id = ? ORDER BY external_ip`,
      [id],
    );
    expect(found.map((h) => [h.external_ip, h.found_by, Number(h.retro_hunt_id)])).toEqual([
      ['198.51.100.82', 'RETRO_HUNT', hunts[0]],
      ['198.51.100.83', 'RETRO_HUNT', hunts[0]],
    ]);
    expect(await status(id)).toBe('COMPLETED');
    expect(await processQueued(t.services)).toEqual([]);
  });

  it('re-runs an upload that saw its hunt waiting with fewer changes than the hunt covers when planned', async () => {
    await add('198.51.100.80');
    const id = await uploadOf(captureTo('198.51.100.81', 50003) + captureTo('198.51.100.80', 50004));
    expect((await processQueued(t.services)).map((o) => o.status)).toEqual(['COMPLETED']);
    // A second change joins the waiting hunt after the upload was matched: the upload did not see it.
    await add('198.51.100.81');
    expect(await t.services.retroHunts.runDue(far())).toBe(1);
    expect(await status(id)).toBe('QUEUED');
    await processQueued(t.services);
    await t.services.retroHunts.runDue(far());
    expect(await newestHunt()).toMatchObject({ status: 'COMPLETED', uploadsRerun: 1, uploadsUpToDate: 0, hitsAdded: 1 });
    expect(await hitsOf(id)).toEqual([
      ['198.51.100.80', 'UPLOAD'],
      ['198.51.100.81', 'RETRO_HUNT'],
    ]);
  });

  const huntRow = async (id: number) =>
    (
      (await t.dataSource.query(`SELECT status, uploads_rerun, uploads_done, hits_added, summary FROM retro_hunt WHERE id = ?`, [id])) as Array<
        Record<string, unknown>
      >
    ).map((h) => [h.status, Number(h.uploads_rerun), Number(h.uploads_done), Number(h.hits_added), h.summary])[0];
  const lastHuntId = async () => Number((await t.dataSource.query(`SELECT MAX(id) AS id FROM retro_hunt`))[0].id);
  const waitingRows = async (uploadId: number) =>
    ((await t.dataSource.query(`SELECT retro_hunt_id FROM retro_hunt_upload WHERE upload_id = ?`, [uploadId])) as Array<Record<string, unknown>>).map((r) =>
      Number(r.retro_hunt_id),
    );

  /** An upload to `ip`, processed; then `ip` listed and its hunt planned, which queues the upload again. */
  const rerunQueued = async (ip: string, port: number) => {
    const id = await uploadOf(captureTo(ip, port));
    expect((await processQueued(t.services)).map((o) => o.status)).toEqual(['COMPLETED']);
    await add(ip);
    expect(await t.services.retroHunts.runDue(far())).toBe(1);
    return { id, hunt: await lastHuntId() };
  };

  it('counts a run that lost its lease for no hunt: the hunts planned while it ran wait for the run that finishes', async () => {
    const id = await uploadOf(captureTo('198.51.100.84', 50007));
    let hunt = 0;
    const outcomes = await whileIndexHeld(async () => {
      await add('198.51.100.84');
      expect(await t.services.retroHunts.runDue(far())).toBe(1);
      hunt = await lastHuntId();
      // The worker stalls past its lease: another claims the upload, and this run's finish changes nothing.
      await t.dataSource.query(`UPDATE log_upload SET lease_owner = ?, lease_expires_at = ? WHERE id = ?`, ['another worker', 0, id]);
    });
    // The lost run, then the recovered one (claimed by the expired lease), which the hunt waited for.
    expect(outcomes.map((o) => o.status)).toEqual(['LEASE_LOST', 'COMPLETED']);
    expect(await waitingRows(id)).toEqual([]);
    await t.services.retroHunts.runDue(far());
    expect(await huntRow(hunt)).toEqual(['COMPLETED', 1, 1, 1, null]);
    expect(await hitsOf(id)).toEqual([['198.51.100.84', 'RETRO_HUNT']]);
  });

  it('completes a hunt whose re-run failed, saying so; a reprocess of the upload afterwards is not counted for it', async () => {
    const { id, hunt } = await rerunQueued('198.51.100.85', 50008);
    expect(await waitingRows(id)).toEqual([hunt]);
    // The re-run fails for good (as after its attempts ran out).
    await t.dataSource.query(`UPDATE log_upload SET status = 'FAILED', error = 'disk gone' WHERE id = ?`, [id]);
    await t.services.retroHunts.runDue(far());
    expect(await huntRow(hunt)).toEqual(['COMPLETED', 1, 0, 0, '1 upload(s) failed on re-run; their hits are as the failure left them.']);
    // Its row stays with the failed upload (the upload's next run or its deletion drops it); the hunt waits no more.
    expect(await waitingRows(id)).toEqual([hunt]);
    const r = (
      await q(`mutation($i: LogUploadReprocessInput!) { logUploadReprocess(input: $i) { userErrors { message } } }`, { i: { id: toGlobalId('LogUpload', id) } })
    ).logUploadReprocess;
    expect(r.userErrors).toEqual([]);
    expect((await processQueued(t.services)).map((o) => o.status)).toEqual(['COMPLETED']);
    expect(await huntRow(hunt)).toEqual(['COMPLETED', 1, 0, 0, '1 upload(s) failed on re-run; their hits are as the failure left them.']);
    expect(await hitsOf(id)).toEqual([['198.51.100.85', 'UPLOAD']]);
    expect(await waitingRows(id)).toEqual([]);
  });

  it('the migration seeds the uploads running hunts wait for from log_upload.retro_hunt_id', async () => {
    const { id, hunt } = await rerunQueued('198.51.100.86', 50009);
    const runner = t.dataSource.createQueryRunner();
    try {
      const migration = new RetroHuntUpload1764750000000();
      await migration.down(runner);
      await migration.up(runner);
    } finally {
      await runner.release();
    }
    expect(await waitingRows(id)).toEqual([hunt]);
    expect((await processQueued(t.services)).map((o) => o.status)).toEqual(['COMPLETED']);
    await t.services.retroHunts.runDue(far());
    expect(await huntRow(hunt)).toEqual(['COMPLETED', 1, 1, 1, null]);
  });

  it("counts a re-run that finishes while the hunt's completion is under way, and no upload as deleted", async () => {
    const { id, hunt } = await rerunQueued('198.51.100.87', 50010);
    // The completion has read which hunts it may complete (complete()'s first statement; before c1119af, which hunts
    // ran and their counts) when the upload's re-run commits.
    const query = t.dataSource.query.bind(t.dataSource);
    let paused = false;
    const spy = jest.spyOn(t.dataSource, 'query').mockImplementation(async (sql: string, params?: any) => {
      const rows = await query(sql, params);
      if (!paused && /^SELECT (h\.)?id\b.* FROM retro_hunt (h )?WHERE (h\.)?status = \?/s.test(sql.trim()) && !/\bchanges\b/.test(sql)) {
        paused = true;
        expect((await processQueued(t.services)).map((o) => o.status)).toEqual(['COMPLETED']);
      }
      return rows;
    });
    try {
      await t.services.retroHunts.runDue(far());
    } finally {
      spy.mockRestore();
    }
    expect(paused).toBe(true);
    // The upload was queued when the completion looked: the hunt is not completed on that tick, and nothing is lost.
    expect(await huntRow(hunt)).toEqual(['RUNNING', 1, 1, 1, null]);
    await t.services.retroHunts.runDue(far());
    expect(await huntRow(hunt)).toEqual(['COMPLETED', 1, 1, 1, null]);
    expect(await waitingRows(id)).toEqual([]);
  });

  it('counts no run for a hunt that completed, nor for one that no longer waits for the upload', async () => {
    const { id, hunt } = await rerunQueued('198.51.100.88', 50011);
    await t.dataSource.query(`UPDATE log_upload SET status = 'FAILED' WHERE id = ?`, [id]);
    await t.services.retroHunts.runDue(far());
    expect((await huntRow(hunt))[0]).toBe('COMPLETED');
    const none = { added: 0, removed: 0 };
    const one = { added: 1, removed: 0 };
    expect(await t.dataSource.transaction((em) => recordRetroHuntRun(em, id, hunt, one, none))).toBe(false);
    expect(await huntRow(hunt)).toEqual(['COMPLETED', 1, 0, 0, '1 upload(s) failed on re-run; their hits are as the failure left them.']);
    expect(await waitingRows(id)).toEqual([]);
    // Running, but not waiting for this upload.
    await t.dataSource.query(`UPDATE retro_hunt SET status = 'RUNNING' WHERE id = ?`, [hunt]);
    expect(await t.dataSource.transaction((em) => recordRetroHuntRun(em, id, hunt, one, none))).toBe(false);
    expect((await huntRow(hunt)).slice(1, 4)).toEqual([1, 0, 0]);
    await t.dataSource.query(`UPDATE retro_hunt SET status = 'COMPLETED' WHERE id = ?`, [hunt]);
  });
});
