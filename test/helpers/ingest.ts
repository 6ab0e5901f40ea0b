import { Services } from '../../src/app/services';
import { LogUploadStatus } from '../../src/modules/log-upload/log-upload.enums';
import { ProcessOutcome } from '../../src/modules/log-upload/log-upload.processor';
import { gqlUpload, GqlResult, ok, TestApp } from './app';

export const UPLOAD = `mutation($input: LogUploadCreateInput!) { logUploadCreate(input: $input) {
  duplicate logUpload { id status fileName size textBytes md5 source } userErrors { code field message } } }`;

export const UPLOAD_FIELDS = `id status error lineCount packetLines skippedLines connections inboundConnections outboundConnections hits
  firstCaptureAt lastCaptureAt progressPercent attempts skippedByReason { reason count } skippedSamples { lineNumber reason text }`;

/** Uploads `body` through the GraphQL multipart mutation; `input` names the device and the optional md5/size. */
export function upload(
  t: TestApp,
  body: Buffer | string,
  input: Record<string, unknown>,
  options: { key?: string | null; filename?: string } = {},
): Promise<GqlResult> {
  return gqlUpload(t, UPLOAD, { input: { ...input, file: null } }, 'input.file', body, options);
}

/**
 * The triage tests' account: a policy with a BLOCK list holding `c2` (severity 5, C2_BOTNET), the device `edge` on
 * it, and `capture` uploaded from it and processed. Returns the policy's ID.
 */
export async function seedC2Hits(t: TestApp, c2: string, capture: string): Promise<string> {
  const q = async (query: string, v: Record<string, unknown> = {}) => ok(await t.gql(query, v));
  const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
  const list = (await q(`mutation { iocListCreate(input: { name: "c2", kind: BLOCK, severity: 5, category: C2_BOTNET }) { iocList { id } } }`)).iocListCreate
    .iocList.id;
  await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { userErrors { message } } }`, { i: { list, entries: [{ value: c2 }] } });
  await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } });
  await q(`mutation($p: ID!) { deviceCreate(input: { nickname: "edge", ipType: STATIC, ipAddress: "93.184.216.34", policy: $p }) { device { id } } }`, {
    p: policy,
  });
  expect(ok(await upload(t, capture, { deviceNickname: 'edge' })).logUploadCreate.userErrors).toEqual([]);
  await processQueued(t.services);
  return policy;
}

/**
 * Plans every retro-hunt requested (as if their coalescing window had passed), runs the uploads they queued, and
 * closes the hunts: the state a list change reaches once the hunt it caused is done.
 */
export async function settleRetroHunts(services: Services): Promise<void> {
  const far = Date.now() + 60_000;
  await services.retroHunts.runDue(far);
  await processQueued(services);
  await services.retroHunts.runDue(far);
}

/** Runs the worker's claim-and-process loop in the test until the queue is empty (deterministic, no timers). */
export async function processQueued(services: Services, owner = 'test-worker'): Promise<ProcessOutcome[]> {
  const outcomes: ProcessOutcome[] = [];
  for (;;) {
    const job = await services.queue.claim(owner, 60_000);
    if (!job) return outcomes;
    outcomes.push(await services.processor.process(job.uploadId, owner));
  }
}

export async function uploadRow(t: TestApp, id: string, key?: string) {
  return ok(await t.gql(`query($id: ID!) { logUpload(id: $id) { ${UPLOAD_FIELDS} } }`, { id }, key)).logUpload;
}

export async function hitsOf(t: TestApp, id: string) {
  const page = ok(
    await t.gql(
      `query($id: ID!) { logUpload(id: $id) { flowHits(first: 100) { totalCount edges { node {
        direction protocol internalIp internalPort externalIp externalPort destinationPort matchedSide matchedIp matchedCidr severity category
        packets bytes packetsSent packetsReceived bytesSent bytesReceived firstSeenAt lastSeenAt
        ioc { cidr } iocList { name } device { nickname } upload { id } } } } } }`,
      { id },
    ),
  ).logUpload.flowHits;
  return page.edges.map((e: any) => e.node);
}

export const COMPLETED = LogUploadStatus.COMPLETED;
