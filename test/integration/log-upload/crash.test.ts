import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTestDatabase, drivers, TestDatabase } from '../../helpers/db';
import { generateCapture } from '../../helpers/capture';
import { ChildServer, gqlHttp, startChild, uploadHttp } from '../../helpers/child-process';

const COUNTS = 'status attempts lineCount packetLines skippedLines connections inboundConnections outboundConnections hits firstCaptureAt lastCaptureAt';

async function waitFor(url: string, key: string, id: string, timeoutMs = 60_000): Promise<any> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const u = (await gqlHttp(url, key, `query($id: ID!) { logUpload(id: $id) { ${COUNTS} } }`, { id })).logUpload;
    if (u.status === 'COMPLETED' || u.status === 'FAILED') return u;
    if (Date.now() > until) throw new Error(`upload ${id} still ${u.status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function hitTuples(url: string, key: string, id: string): Promise<string[]> {
  const out: string[] = [];
  let after: string | null = null;
  do {
    const page: any = (
      await gqlHttp(
        url,
        key,
        `query($id: ID!, $after: String) { logUpload(id: $id) { flowHits(first: 100, after: $after) { pageInfo { hasNextPage endCursor }
          edges { node { direction protocol internalIp internalPort externalIp externalPort matchedCidr packets bytes firstSeenAt lastSeenAt } } } } }`,
        { id, after },
      )
    ).logUpload.flowHits;
    out.push(...page.edges.map((e: any) => JSON.stringify(e.node)));
    after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
  } while (after);
  return out.sort();
}

describe.each(drivers)('an acknowledged upload survives SIGKILL mid-processing (%s)', (driver) => {
  let db: TestDatabase | null = null;
  let dir: string;
  let child: ChildServer | null = null;
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-crash-'));
    if (driver === 'mysql') {
      db = await createTestDatabase('mysql');
      env = { DATABASE_URL: (db.config as { url: string }).url };
    } else {
      env = { DATA_DIR: dir };
    }
    Object.assign(env, { WORKER_LEASE_MS: '1500', WORKER_POLL_MS: '100' });
  });
  afterAll(async () => {
    if (child && child.proc.exitCode === null) {
      child.proc.kill('SIGTERM');
      await child.exited;
    }
    await db?.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('is processed after a restart with the same counts and hits as an uninterrupted run, and no duplicates', async () => {
    const capture = generateCapture(7, 3000, 12);
    expect(capture.text.length).toBeGreaterThan(1_500_000);
    child = await startChild({ ...env, CRASH_AT_BYTES: '600000' });
    const key = child.secret!;
    const q = (query: string, v: Record<string, unknown> = {}) => gqlHttp(child!.url, key, query, v);
    const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    const list = (await q(`mutation { iocListCreate(input: { name: "bad", kind: BLOCK, severity: 5, category: C2_BOTNET }) { iocList { id } } }`)).iocListCreate
      .iocList.id;
    await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list, entries: capture.badAddresses.map((value) => ({ value })) } });
    await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } });
    for (const nickname of ['crashy', 'clean']) {
      await q(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { device { id } } }`, {
        i: { nickname, ipType: 'STATIC', ipAddress: nickname === 'crashy' ? '8.8.8.8' : '8.8.4.4', policy },
      });
    }

    // The list changes above request a retro-hunt (coalesced for 2 s): let it finish first. Planned while the
    // upload is processing, it would queue the upload again for itself (a new run, attempts from 0), which is
    // retro-hunt's business, not this crash's.
    for (const until = Date.now() + 30_000; ;) {
      const hunts = (await q(`{ retroHunts(first: 50) { edges { node { status } } } }`)).retroHunts.edges.map(
        (e: { node: { status: string } }) => e.node.status,
      );
      if (hunts.length > 0 && hunts.every((s: string) => s === 'COMPLETED' || s === 'REFUSED')) break;
      if (Date.now() > until) throw new Error(`retro-hunts still pending: ${hunts.join(', ')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const acked = await uploadHttp(child.url, key, 'crashy', capture.text);
    expect(acked.userErrors).toEqual([]);
    expect(acked.logUpload.status).toBe('QUEUED');
    // The worker dies part-way through parsing, after the acknowledgment.
    expect((await child.exited).signal).toBe('SIGKILL');

    child = await startChild(env);
    const recovered = await waitFor(child.url, key, acked.logUpload.id);
    const clean = await uploadHttp(child.url, key, 'clean', capture.text);
    expect(clean.duplicate).toBe(false);
    const reference = await waitFor(child.url, key, clean.logUpload.id);

    expect(recovered.status).toBe('COMPLETED');
    expect(recovered.attempts).toBe(2);
    expect({ ...recovered, attempts: 1 }).toEqual(reference);
    expect(recovered.hits).toBe(capture.badFlows);
    const recoveredHits = await hitTuples(child.url, key, acked.logUpload.id);
    expect(recoveredHits).toHaveLength(capture.badFlows);
    expect(recoveredHits).toEqual(await hitTuples(child.url, key, clean.logUpload.id));
    expect(new Set(recoveredHits).size).toBe(recoveredHits.length);
  });
});
