import { DataSource } from 'typeorm';
import { UserErrorCode } from '../../common/errors/user-error';
import { IocListKind, IocCategory } from '../ioc/ioc.enums';
import { IocListService } from '../ioc/ioc-list.service';
import { IocService } from '../ioc/ioc.service';
import { PolicyService } from '../policy/policy.service';
import type { AllowWriter } from './hit-triage.service';

/** The ALLOW list a FALSE_POSITIVE verdict writes to, per policy. */
export function falsePositiveListName(policyId: number): string {
  return `False positives (policy ${policyId})`;
}

/**
 * FALSE_POSITIVE's allow through the list services' own entrances: the list is created and attached, and the
 * entries added, as an admin would; each of those changes requests its retro-hunt (retro-hunt.request.ts).
 */
export function falsePositiveAllow(dataSource: DataSource, policies: PolicyService, lists: IocListService, iocs: IocService): AllowWriter {
  return {
    async findOrCreateAllowList(accountId, policyId) {
      const name = falsePositiveListName(policyId);
      const find = async () => {
        const found: Array<{ id: number | string }> = await dataSource.query(`SELECT id FROM ioc_list WHERE account_id = ? AND name = ?`, [accountId, name]);
        return found.length ? Number(found[0].id) : null;
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
