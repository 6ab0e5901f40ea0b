import { DataSource, EntityManager, In } from 'typeorm';
import { requestRetroHunt } from '../retro-hunt/retro-hunt.request';
import { bulkInsert } from '../../db/bulk';
import { IocList } from '../ioc/ioc-list.entity';
import { IndexChanges, NO_INDEX_CHANGES } from '../ioc/ioc-index.warmer';
import { PolicyIocList } from './policy-ioc-list.entity';
import { transactionWithUniqueCheck } from '../../common/errors/db-errors';
import { failure, Outcome, success, userError, UserErrorCode, UserErrorData } from '../../common/errors/user-error';
import { ConnectionData } from '../../common/pagination/connection';
import { keysetPaginate, KeysetPage } from '../../common/pagination/keyset';
import { foldKey, LIKE_ESCAPE, likeContains } from '../../common/text';
import { Device } from '../device/device.entity';
import { Policy } from './policy.entity';

export interface PolicyFields {
  name?: string | null;
  description?: string | null;
}

export interface PolicyFilterData {
  nameContains?: string | null;
}

const MAX_DESCRIPTION = 2000;

export class PolicyService {
  constructor(
    private readonly dataSource: DataSource,
    /** Told after commit when a change makes matcher indexes stale (background rebuild). */
    private readonly changes: IndexChanges = NO_INDEX_CHANGES,
  ) {}

  async find(accountId: number, id: number | null): Promise<Policy | null> {
    if (id == null) return null;
    return this.dataSource.getRepository(Policy).findOneBy({ id, accountId });
  }

  /** Batch load for DataLoaders: results in key order, null for misses and other accounts' IDs. */
  async findMany(accountId: number, ids: readonly number[]): Promise<(Policy | null)[]> {
    const rows = ids.length
      ? await this.dataSource
          .getRepository(Policy)
          .createQueryBuilder('p')
          .where('p.accountId = :accountId', { accountId })
          .andWhereInIds([...ids])
          .getMany()
      : [];
    const byId = new Map(rows.map((p) => [p.id, p]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  /** How many devices use each policy, in key order. */
  async deviceCounts(accountId: number, policyIds: readonly number[]): Promise<number[]> {
    if (policyIds.length === 0) return [];
    const rows: Array<{ policyId: number; n: string | number }> = await this.dataSource
      .getRepository(Device)
      .createQueryBuilder('d')
      .select('d.policyId', 'policyId')
      .addSelect('COUNT(*)', 'n')
      .where('d.accountId = :accountId', { accountId })
      .andWhere('d.policyId IN (:...policyIds)', { policyIds: [...policyIds] })
      .groupBy('d.policyId')
      .getRawMany();
    // mysql2 returns COUNT(*) as a string.
    const counts = new Map(rows.map((r) => [Number(r.policyId), Number(r.n)]));
    return policyIds.map((id) => counts.get(id) ?? 0);
  }

  async list(accountId: number, filter: PolicyFilterData | null | undefined, page: KeysetPage): Promise<ConnectionData<Policy>> {
    const qb = this.dataSource.getRepository(Policy).createQueryBuilder('p').where('p.accountId = :accountId', { accountId });
    if (filter?.nameContains) qb.andWhere(`p.nameKey LIKE :name ${LIKE_ESCAPE}`, { name: likeContains(filter.nameContains) });
    return keysetPaginate(qb, 'policy', [{ expression: 'p.id', direction: 'ASC', value: (p) => p.id }], page);
  }

  async create(accountId: number, input: PolicyFields): Promise<Outcome<Policy>> {
    return this.write(async (em) => {
      const errors = await this.validate(em, accountId, input, null, true);
      if (errors.length) return failure(...errors);
      const now = new Date();
      const repo = em.getRepository(Policy);
      const name = (input.name as string).trim();
      const policy = repo.create({
        accountId,
        name,
        nameKey: foldKey(name),
        description: input.description?.trim() || null,
        createdAt: now,
        updatedAt: now,
      });
      return success(await repo.save(policy));
    });
  }

  async update(accountId: number, id: number | null, input: PolicyFields): Promise<Outcome<Policy>> {
    return this.write(async (em) => {
      const repo = em.getRepository(Policy);
      const policy = id == null ? null : await repo.findOneBy({ id, accountId });
      if (!policy) return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'id'], 'No policy with this ID.'));
      const errors = await this.validate(em, accountId, input, policy.id, false);
      if (errors.length) return failure(...errors);
      if (input.name != null) {
        policy.name = input.name.trim();
        policy.nameKey = foldKey(policy.name);
      }
      if (input.description !== undefined) policy.description = input.description?.trim() || null;
      policy.updatedAt = new Date();
      return success(await repo.save(policy));
    });
  }

  /** Refused while a device uses the policy: a device always has one. */
  async delete(accountId: number, id: number | null): Promise<Outcome<Policy>> {
    return this.dataSource.transaction(async (em) => {
      const repo = em.getRepository(Policy);
      const policy = id == null ? null : await repo.findOneBy({ id, accountId });
      if (!policy) return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'id'], 'No policy with this ID.'));
      const users = await em.getRepository(Device).countBy({ accountId, policyId: policy.id });
      if (users > 0) {
        return failure(
          userError(
            UserErrorCode.IN_USE,
            ['input', 'id'],
            `Policy "${policy.name}" is used by ${users} device${users === 1 ? '' : 's'}; give them another policy first.`,
          ),
        );
      }
      const removed = { ...policy };
      await repo.delete({ id: policy.id, accountId });
      return success(Object.assign(new Policy(), removed));
    });
  }

  /** Adds lists to a policy (already attached ones are fine); bumps the policy's revision for the matcher cache. */
  async attachIocLists(accountId: number, policyId: number | null, listIds: (number | null)[]): Promise<Outcome<Policy>> {
    return this.changeLists(accountId, policyId, listIds, async (em, policy, ids) => {
      const now = Date.now();
      const attached = new Set((await em.getRepository(PolicyIocList).findBy({ policyId: policy.id, iocListId: In(ids) })).map((l) => l.iocListId));
      const fresh = ids.filter((id) => !attached.has(id));
      await bulkInsert(
        em,
        'policy_ioc_list',
        ['policy_id', 'ioc_list_id', 'created_at'],
        fresh.map((id) => [policy.id, id, now]),
        { ignoreDuplicates: true },
      );
      return fresh;
    });
  }

  /** Removes lists from a policy (lists not attached are fine). */
  async detachIocLists(accountId: number, policyId: number | null, listIds: (number | null)[]): Promise<Outcome<Policy>> {
    return this.changeLists(accountId, policyId, listIds, async (em, policy, ids) => {
      const attached = (await em.getRepository(PolicyIocList).findBy({ policyId: policy.id, iocListId: In(ids) })).map((l) => l.iocListId);
      if (attached.length) await em.getRepository(PolicyIocList).delete({ policyId: policy.id, iocListId: In(attached) });
      return attached;
    });
  }

  private async changeLists(
    accountId: number,
    policyId: number | null,
    listIds: (number | null)[],
    /** Attaches or detaches; returns the lists whose attachment changed. */
    change: (em: EntityManager, policy: Policy, ids: number[]) => Promise<number[]>,
  ): Promise<Outcome<Policy>> {
    if (listIds.length === 0) return failure(userError(UserErrorCode.REQUIRED, ['input', 'iocLists'], 'Give at least one IOC list.'));
    const outcome = await this.dataSource.transaction(async (em) => {
      const policy = policyId == null ? null : await em.getRepository(Policy).findOneBy({ id: policyId, accountId });
      if (!policy) return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'policy'], 'No policy with this ID.'));
      const valid = listIds.filter((id): id is number => id != null);
      // Locked as an entry add locks its list (ioc.service.ts lockList): an add either committed before and counts, or
      // plans its own hunt after this commits and finds the policy.
      const qb = em
        .getRepository(IocList)
        .createQueryBuilder('l')
        .where('l.accountId = :accountId AND l.id IN (:...ids)', { accountId, ids: valid.length ? valid : [-1] });
      if (em.connection.options.type !== 'better-sqlite3') qb.setLock('pessimistic_write');
      const lists = valid.length ? await qb.getMany() : [];
      const found = new Set(lists.map((l) => l.id));
      const errors = listIds
        .map((id, i) =>
          id == null || !found.has(id) ? userError(UserErrorCode.NOT_FOUND, ['input', 'iocLists', String(i)], 'No IOC list with this ID.') : null,
        )
        .filter((e): e is UserErrorData => e != null);
      if (errors.length) return failure(...errors);
      const changed = new Set(await change(em, policy, [...found]));
      // The lists' entries now judge (or no longer judge) the policy's stored uploads (#17). A list attached already
      // (or not attached) changes nothing, nor does an empty one: entries added later request their own hunt.
      const judging = lists.filter((l) => changed.has(l.id) && l.entryCount > 0).map((l) => l.id);
      if (judging.length) {
        await requestRetroHunt(em, accountId, {
          target: { policies: [policy.id], lists: judging, listEntries: true },
          cause: `IOC list(s) ${judging.join(', ')} attached to or detached from policy ${policy.id}.`,
        });
      }
      policy.revision += 1;
      policy.updatedAt = new Date();
      await em.getRepository(Policy).update({ id: policy.id }, { revision: policy.revision, updatedAt: policy.updatedAt });
      return success(policy);
    });
    if (outcome.ok) this.changes.policiesChanged([outcome.value.id]);
    return outcome;
  }

  private write(work: (em: EntityManager) => Promise<Outcome<Policy>>): Promise<Outcome<Policy>> {
    return transactionWithUniqueCheck(this.dataSource, work, ['input', 'name'], 'A policy with this name already exists.');
  }

  private async validate(em: EntityManager, accountId: number, input: PolicyFields, selfId: number | null, creating: boolean): Promise<UserErrorData[]> {
    const errors: UserErrorData[] = [];
    if (creating || input.name != null) {
      const name = input.name?.trim() ?? '';
      if (name.length === 0) errors.push(userError(UserErrorCode.REQUIRED, ['input', 'name'], 'A policy needs a name.'));
      else if (name.length > 100) errors.push(userError(UserErrorCode.TOO_LONG, ['input', 'name'], 'Policy names are at most 100 characters.'));
      else {
        const clash = await em.getRepository(Policy).findOneBy({ accountId, nameKey: foldKey(name) });
        if (clash && clash.id !== selfId) {
          errors.push(userError(UserErrorCode.TAKEN, ['input', 'name'], `A policy named "${clash.name}" already exists.`));
        }
      }
    }
    if (input.description && input.description.length > MAX_DESCRIPTION) {
      errors.push(userError(UserErrorCode.TOO_LONG, ['input', 'description'], `Descriptions are at most ${MAX_DESCRIPTION} characters.`));
    }
    return errors;
  }
}
