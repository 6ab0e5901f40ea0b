import { ok, TestApp } from './app';

/**
 * A policy with one BLOCK domain list holding `evil.example` (severity 5, C2_BOTNET), and a device `edge` on it:
 * a DNS query for the name or a subdomain of it, uploaded to `edge`, is a DNS hit.
 */
export async function blockEvilExample(t: TestApp): Promise<void> {
  const q = async (query: string, v: Record<string, unknown> = {}) => ok(await t.gql(query, v));
  const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
  const list = (
    await q(`mutation { iocListCreate(input: { name: "C2 domains", kind: BLOCK, entryKind: DOMAIN, severity: 5, category: C2_BOTNET }) { iocList { id } } }`)
  ).iocListCreate.iocList.id;
  const added = (await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { userErrors { message } } }`, { i: { list, entries: [{ value: 'evil.example' }] } }))
    .iocAdd;
  if (added.userErrors.length) throw new Error(`iocAdd: ${JSON.stringify(added.userErrors)}`);
  await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } });
  const created = (
    await q(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { userErrors { message } } }`, {
      i: { nickname: 'edge', ipType: 'STATIC', ipAddress: '93.184.216.34', policy },
    })
  ).deviceCreate;
  if (created.userErrors.length) throw new Error(`deviceCreate: ${JSON.stringify(created.userErrors)}`);
}
