import { DataSource } from 'typeorm';
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
      const found: Array<{ id: number | string }> = await dataSource.query(`SELECT id FROM ioc_list WHERE account_id = ? AND name = ?`, [accountId, name]);
      let listId = found.length ? Number(found[0].id) : null;
      if (listId == null) {
        const created = await lists.create(accountId, {
          name,
          kind: IocListKind.ALLOW,
          severity: 0,
          category: IocCategory.OTHER,
          description: 'Entries analysts marked as false positives (flowHitTriage).',
        });
        if (!created.ok) throw new Error(`false-positive list: ${created.errors.map((e) => e.message).join('; ')}`);
        listId = created.value.id;
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
