import { DataSource } from 'typeorm';

/**
 * The retro-hunt property tests' changes of attachments and devices, through the API as a user makes them: a list
 * attached to or detached from a policy, a device moved to another policy. Indexes pick among the global IDs given.
 */
export type AttachmentOp = { kind: 'attach' | 'detach'; list: number; policy: number } | { kind: 'move'; device: number; policy: number };

export async function applyAttachmentOp(
  q: (query: string, v?: Record<string, unknown>) => Promise<any>,
  op: AttachmentOp,
  ids: { policies: string[]; lists: string[]; devices: string[] },
): Promise<void> {
  if (op.kind === 'move') {
    await q(`mutation($i: DeviceUpdateInput!) { deviceUpdate(input: $i) { userErrors { message } } }`, {
      i: { id: ids.devices[op.device], policy: ids.policies[op.policy] },
    });
    return;
  }
  const verb = op.kind === 'attach' ? 'policyAttachIocLists' : 'policyDetachIocLists';
  await q(`mutation($i: PolicyIocListsInput!) { ${verb}(input: $i) { userErrors { message } } }`, {
    i: { policy: ids.policies[op.policy], iocLists: [ids.lists[op.list]] },
  });
}

/**
 * After the hunts settled (no device deleted, nothing purged): every hunt is complete, counted each upload it re-ran
 * and said nothing was lost, and no hunt waits for an upload any more.
 */
export async function expectHuntsAccounted(dataSource: DataSource): Promise<void> {
  const hunts: Array<Record<string, unknown>> = await dataSource.query(
    `SELECT id, status, uploads_rerun, uploads_done, uploads_purged, summary FROM retro_hunt ORDER BY id`,
  );
  const off = hunts.filter(
    (h) => h.status !== 'COMPLETED' || Number(h.uploads_done) !== Number(h.uploads_rerun) || Number(h.uploads_purged) !== 0 || h.summary !== null,
  );
  expect(off).toEqual([]);
  expect(Number((await dataSource.query(`SELECT COUNT(*) AS n FROM retro_hunt_upload`))[0].n)).toBe(0);
}
