import { DataSource } from 'typeorm';
import { foldKey } from '../../common/text';
import { toGlobalId } from '../../common/ids/global-id';
import { UserErrorCode } from '../../common/errors/user-error';
import { IocListKind, IocCategory, IocEntryKind } from '../ioc/ioc.enums';
import { IocListService } from '../ioc/ioc-list.service';
import { IocService } from '../ioc/ioc.service';
import { PolicyService } from '../policy/policy.service';
import type { AllowWriter } from './hit-triage.service';

/** The ALLOW list a FALSE_POSITIVE verdict writes to, per policy. */
export function falsePositiveListName(policyId: number): string {
  return `False positives (policy ${policyId})`;
}

/**
 * The lists named for these policies' false positives (names are unique case-insensitively), and whether each
 * takes allows: one query for all of them.
 */
async function namedLists(
  dataSource: DataSource,
  accountId: number,
  policyIds: readonly number[],
): Promise<Array<{ id: number; name: string; usable: boolean }>> {
  if (policyIds.length === 0) return [];
  const rows: Array<{ id: number | string; name: string; kind: string; entry_kind: string }> = await dataSource.query(
    `SELECT id, name, kind, entry_kind FROM ioc_list WHERE account_id = ? AND name_key IN (${policyIds.map(() => '?').join(', ')})`,
    [accountId, ...policyIds.map((p) => foldKey(falsePositiveListName(p)))],
  );
  return rows.map((r) => ({ id: Number(r.id), name: r.name, usable: r.kind === IocListKind.ALLOW && r.entry_kind === IocEntryKind.IP }));
}

function unusable(list: { id: number; name: string }): string {
  return `FALSE_POSITIVE verdicts write their allows to the list "${list.name}" (${toGlobalId('IocList', list.id)}), which is no longer an address ALLOW list; change its kind back to ALLOW or rename it (a new list is then created).`;
}

/**
 * FALSE_POSITIVE's allow through the list services' own entrances: the list is created and attached, and the
 * entries added, as an admin would; each of those changes requests its retro-hunt (retro-hunt.request.ts).
 */
export function falsePositiveAllow(dataSource: DataSource, policies: PolicyService, lists: IocListService, iocs: IocService): AllowWriter {
  const named = async (accountId: number, policyId: number) => (await namedLists(dataSource, accountId, [policyId]))[0] ?? null;
  return {
    async refusal(accountId, policyIds) {
      const found = (await namedLists(dataSource, accountId, policyIds)).find((l) => !l.usable);
      return found ? unusable(found) : null;
    },
    async findOrCreateAllowList(accountId, policyId) {
      const name = falsePositiveListName(policyId);
      const find = async () => {
        const found = await named(accountId, policyId);
        // Changed since refusal() looked (a race with an admin's change): the verdict is stored, the allow is not.
        if (found && !found.usable) throw new Error(`false-positive list: ${unusable(found)}`);
        return found ? found.id : null;
      };
      let listId = await find();
      if (listId == null) {
        const created = await lists.create(accountId, {
          name,
          kind: IocListKind.ALLOW,
          severity: 0,
          category: IocCategory.OTHER,
          description: 'Entries analysts marked as false positives (flowHitTriage).',
        });
        // Another verdict created it since the lookup (verdicts at once on the same policy): that one is the list.
        listId = created.ok ? created.value.id : created.errors.every((e) => e.code === UserErrorCode.TAKEN) ? await find() : null;
        if (listId == null) throw new Error(`false-positive list: ${created.ok ? 'not found' : created.errors.map((e) => e.message).join('; ')}`);
      }
      const attached = await policies.attachIocLists(accountId, policyId, [listId]);
      if (!attached.ok) throw new Error(`false-positive list: ${attached.errors.map((e) => e.message).join('; ')}`);
      return listId;
    },
    async addAllows(accountId, listId, allows, comment) {
      for (let i = 0; i < allows.length; i += 1000) {
        const added = await iocs.addAllows(accountId, listId, allows.slice(i, i + 1000), comment);
        if (!added.ok) throw new Error(`false-positive entries: ${added.errors.map((e) => e.message).join('; ')}`);
      }
    },
  };
}
