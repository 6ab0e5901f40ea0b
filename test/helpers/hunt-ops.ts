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
