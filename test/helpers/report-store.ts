import { ok, TestApp } from './app';
import { processQueued, upload } from './ingest';
import type { ResolvedHitFilter } from '../../src/modules/flow-hit/hit-filter';
import type { ReportService } from '../../src/modules/report/report.service';
import { GROUPINGS } from '../../src/modules/report/groupings/groupings';
import { TimeBucket } from '../../src/modules/report/report.enums';

/**
 * A small account for the in-memory store's report tests (report-threads, shared-reports): one BLOCK list with one
 * C2 address, a device "gw" on a policy with it, and captures of inside hosts connecting to that address on a day.
 */

export const STORE_START = Date.parse('2024-06-01T00:00:00Z');
export const DAY = 86_400_000;
const C2 = '198.51.100.7';

/** A capture of `hosts` connections to the listed address, one per inside host from 10.0.0.`first`, at `day`. */
export function c2Capture(first: number, hosts: number, day: number): string {
  const lines: string[] = [];
  for (let i = 0; i < hosts; i++) {
    const ts = (STORE_START + day * DAY + i * 1000) / 1000;
    lines.push(`${ts.toFixed(6)} IP 10.0.0.${first + i}.40000 > ${C2}.443: Flags [S], seq 1, win 512, length 0`);
  }
  return lines.join('\n') + '\n';
}

/**
 * The list (with `address`), a policy with it and a device (`nickname`) on that policy; `uploadHits` then adds
 * hits of c2Capture (each upload processed to COMPLETED).
 */
export async function c2Account(
  t: TestApp,
  { address = C2, nickname = 'gw' }: { address?: string; nickname?: string } = {},
): Promise<{ uploadHits: (first: number, hosts: number, day: number) => Promise<void> }> {
  const q = async (query: string, v: Record<string, unknown> = {}) => ok(await t.gql(query, v));
  const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
  const list = (
    await q(`mutation($i: IocListCreateInput!) { iocListCreate(input: $i) { iocList { id } } }`, {
      i: { name: 'C2', kind: 'BLOCK', severity: 5, category: 'C2_BOTNET' },
    })
  ).iocListCreate.iocList.id;
  await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list, entries: [{ value: address }] } });
  await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } });
  await q(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { device { id } } }`, {
    i: { nickname, ipType: 'STATIC', ipAddress: '8.8.8.8', policy },
  });
  let uploads = 0;
  return {
    uploadHits: async (first, hosts, day) => {
      ok(await upload(t, c2Capture(first, hosts, day), { deviceNickname: nickname }, { filename: `c${++uploads}.txt` }));
      expect((await processQueued(t.services)).map((o) => o.status)).toEqual(['COMPLETED']);
    },
  };
}

/** Every grouping, threats and a timeline: what a full hitReport asks (all asked at once, as GraphQL resolves them). */
export async function everyReport(reports: ReportService, f: ResolvedHitFilter): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  await Promise.all([
    ...GROUPINGS.map(async (g) => (out[g.name] = await reports.group(f, g, { first: 100 }))),
    reports.threats(f, 100).then((rows) => (out.threats = rows)),
    reports.timeline(f, TimeBucket.DAY, 'Europe/Berlin').then((rows) => (out.timeline = rows)),
  ]);
  return out;
}
