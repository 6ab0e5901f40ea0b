import { DataSource, EntityManager } from 'typeorm';
import { requestRetroHunt } from '../retro-hunt/retro-hunt.request';
import { transactionWithUniqueCheck } from '../../common/errors/db-errors';
import { failure, Outcome, success, userError, UserErrorCode, UserErrorData } from '../../common/errors/user-error';
import { ConnectionData } from '../../common/pagination/connection';
import { keysetPaginate, KeysetPage } from '../../common/pagination/keyset';
import { foldKey, LIKE_ESCAPE, likeContains } from '../../common/text';
import { PolicyIocList } from '../policy/policy-ioc-list.entity';
import { Policy } from '../policy/policy.entity';
import { IocCategory, IocEntryKind, IocListKind } from './ioc.enums';
import { IocList } from './ioc-list.entity';
import { IndexChanges, NO_INDEX_CHANGES } from './ioc-index.warmer';
import { findByIds } from '../../db/find-by-ids';
import { execute } from '../../db/bulk';
import { nextTurn } from '../../common/async/next-turn';

/** Entries deleted per statement when a list is deleted. */
const DELETE_CHUNK = 20_000;

/**
 * A list's entries, deleted in chunks along the (list_id, id) index, each chunk after the last (no chunk walks
 * over the rows deleted before it), with a turn of the event loop between them, inside the caller's transaction
 * (the delete stays atomic). The list row's ON DELETE CASCADE did it in one statement: 7 s holding SQLite, and so
 * every request, for a 1M-name list (a readiness probe sent meanwhile was reset).
 */
async function deleteEntries(em: EntityManager, list: IocList): Promise<void> {
  const table = list.entryKind === IocEntryKind.DOMAIN ? 'ioc_domain' : 'ioc';
  let after = 0;
  for (;;) {
    const last: Array<{ id: number | string }> = await em.query(
      `SELECT id FROM ${table} WHERE list_id = ? AND id > ? ORDER BY id LIMIT 1 OFFSET ${DELETE_CHUNK - 1}`,
      [list.id, after],
    );
    if (last.length === 0) {
      await execute(em, `DELETE FROM ${table} WHERE list_id = ? AND id > ?`, [list.id, after]);
      return;
    }
    await execute(em, `DELETE FROM ${table} WHERE list_id = ? AND id > ? AND id <= ?`, [list.id, after, last[0].id]);
    after = Number(last[0].id);
    await nextTurn();
  }
}

export interface IocListFields {
  name?: string | null;
  kind?: IocListKind | null;
  /** Creation only: IP (default) or DOMAIN. */
  entryKind?: IocEntryKind | null;
  severity?: number | null;
  category?: IocCategory | null;
  sourceName?: string | null;
  referenceUrl?: string | null;
  description?: string | null;
  /** Ageing (#21): on update, 0 removes the setting. */
  entryLifetimeSeconds?: number | null;
  ageingGraceSeconds?: number | null;
}

/** Bounds of a list's lifetime and grace period, in seconds (a minute to ten years). */
export const MIN_AGE_SECONDS = 60;
export const MAX_AGE_SECONDS = 315_360_000;

export interface IocListFilterData {
  nameContains?: string | null;
  kinds?: IocListKind[] | null;
  severities?: number[] | null;
  minSeverity?: number | null;
  categories?: IocCategory[] | null;
}

export class IocListService {
  constructor(
    private readonly dataSource: DataSource,
    /** Told after commit when a change makes matcher indexes stale (background rebuild). */
    private readonly changes: IndexChanges = NO_INDEX_CHANGES,
  ) {}

  async find(accountId: number, id: number | null): Promise<IocList | null> {
    if (id == null) return null;
    return this.dataSource.getRepository(IocList).findOneBy({ id, accountId });
  }

  async findMany(accountId: number, ids: readonly number[]): Promise<(IocList | null)[]> {
    return findByIds(this.dataSource, IocList, accountId, ids);
  }

  async list(accountId: number, filter: IocListFilterData | null | undefined, page: KeysetPage): Promise<ConnectionData<IocList>> {
    const qb = this.dataSource.getRepository(IocList).createQueryBuilder('l').where('l.accountId = :accountId', { accountId });
    if (filter?.nameContains) qb.andWhere(`l.nameKey LIKE :name ${LIKE_ESCAPE}`, { name: likeContains(filter.nameContains) });
    if (filter?.kinds?.length) qb.andWhere('l.kind IN (:...kinds)', { kinds: filter.kinds });
    if (filter?.categories?.length) qb.andWhere('l.category IN (:...categories)', { categories: filter.categories });
    if (filter?.severities?.length) qb.andWhere('l.severity IN (:...severities)', { severities: filter.severities });
    if (filter?.minSeverity != null) qb.andWhere('l.severity >= :minSeverity', { minSeverity: filter.minSeverity });
    return keysetPaginate(qb, 'ioclist', [{ expression: 'l.id', direction: 'ASC', value: (l) => l.id }], page);
  }

  /** The lists of several policies at once (for `policy.iocLists`), in key order. */
  async listsOfPolicies(accountId: number, policyIds: readonly number[]): Promise<IocList[][]> {
    if (policyIds.length === 0) return [];
    const rows = await this.dataSource
      .getRepository(IocList)
      .createQueryBuilder('l')
      .innerJoin(PolicyIocList, 'pil', 'pil.iocListId = l.id')
      .addSelect('pil.policyId', 'policy_id')
      .where('l.accountId = :accountId', { accountId })
      .andWhere('pil.policyId IN (:...policyIds)', { policyIds: [...policyIds] })
      .orderBy('l.id', 'ASC')
      .getRawAndEntities();
    const byPolicy = new Map<number, IocList[]>();
    rows.entities.forEach((list, i) => {
      const policyId = Number(rows.raw[i].policy_id);
      const bucket = byPolicy.get(policyId) ?? [];
      bucket.push(list);
      byPolicy.set(policyId, bucket);
    });
    return policyIds.map((id) => byPolicy.get(id) ?? []);
  }

  async create(accountId: number, input: IocListFields): Promise<Outcome<IocList>> {
    return this.write(async (em) => {
      const errors = await this.validate(em, accountId, input, null, true);
      if (errors.length) return failure(...errors);
      const now = new Date();
      const repo = em.getRepository(IocList);
      const name = (input.name as string).trim();
      const list = repo.create({
        accountId,
        name,
        nameKey: foldKey(name),
        kind: input.kind ?? IocListKind.BLOCK,
        entryKind: input.entryKind ?? IocEntryKind.IP,
        severity: input.severity ?? 3,
        category: input.category ?? IocCategory.OTHER,
        sourceName: input.sourceName?.trim() || null,
        referenceUrl: input.referenceUrl?.trim() || null,
        description: input.description?.trim() || null,
        entryLifetimeSeconds: input.entryLifetimeSeconds ?? null,
        ageingGraceSeconds: input.ageingGraceSeconds ?? null,
        entryCount: 0,
        revision: 0,
        lastImportedAt: null,
        createdAt: now,
        updatedAt: now,
      });
      return success(await repo.save(list));
    });
  }

  async update(accountId: number, id: number | null, input: IocListFields): Promise<Outcome<IocList>> {
    let matchChanged = false;
    const outcome = await this.write(async (em) => {
      const repo = em.getRepository(IocList);
      const list = id == null ? null : await repo.findOneBy({ id, accountId });
      if (!list) return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'id'], 'No IOC list with this ID.'));
      const errors = await this.validate(em, accountId, input, list.id, false);
      if (errors.length) return failure(...errors);
      if (input.name != null) {
        list.name = input.name.trim();
        list.nameKey = foldKey(list.name);
      }
      // Kind, severity and category change what a match means: indexes built from the old values must go.
      matchChanged =
        (input.kind != null && input.kind !== list.kind) ||
        (input.severity != null && input.severity !== list.severity) ||
        (input.category != null && input.category !== list.category);
      if (input.kind != null) list.kind = input.kind;
      if (input.severity != null) list.severity = input.severity;
      if (input.category != null) list.category = input.category;
      if (input.sourceName !== undefined) list.sourceName = input.sourceName?.trim() || null;
      if (input.referenceUrl !== undefined) list.referenceUrl = input.referenceUrl?.trim() || null;
      if (input.description !== undefined) list.description = input.description?.trim() || null;
      // New ageing settings apply from the next import or fetch into the list.
      if (input.entryLifetimeSeconds != null) list.entryLifetimeSeconds = input.entryLifetimeSeconds || null;
      if (input.ageingGraceSeconds != null) list.ageingGraceSeconds = input.ageingGraceSeconds || null;
      if (matchChanged) list.revision += 1;
      list.updatedAt = new Date();
      // Kind, severity or category re-judge every stored upload its entries meet (#17).
      if (matchChanged)
        await requestRetroHunt(em, accountId, {
          target: { lists: [list.id], listEntries: true },
          cause: `List ${list.id}'s kind, severity or category changed.`,
        });
      return success(await repo.save(list));
    });
    if (outcome.ok && matchChanged) this.changes.listsChanged([outcome.value.id]);
    return outcome;
  }

  /** Refused while a policy uses the list. */
  async delete(accountId: number, id: number | null): Promise<Outcome<IocList>> {
    return this.dataSource.transaction(async (em) => {
      const repo = em.getRepository(IocList);
      const list = id == null ? null : await repo.findOneBy({ id, accountId });
      if (!list) return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'id'], 'No IOC list with this ID.'));
      const users = await em
        .getRepository(Policy)
        .createQueryBuilder('p')
        .innerJoin(PolicyIocList, 'pil', 'pil.policyId = p.id')
        .where('pil.iocListId = :id', { id: list.id })
        .orderBy('p.name')
        .getMany();
      if (users.length) {
        const names = users
          .slice(0, 5)
          .map((p) => `"${p.name}"`)
          .join(', ');
        return failure(
          userError(
            UserErrorCode.IN_USE,
            ['input', 'id'],
            `IOC list "${list.name}" is used by ${users.length === 1 ? 'policy' : 'policies'} ${names}; detach it first.`,
          ),
        );
      }
      const removed = Object.assign(new IocList(), list);
      await deleteEntries(em, list);
      await repo.delete({ id: list.id, accountId });
      return success(removed);
    });
  }

  private write(work: (em: EntityManager) => Promise<Outcome<IocList>>): Promise<Outcome<IocList>> {
    return transactionWithUniqueCheck(this.dataSource, work, ['input', 'name'], 'An IOC list with this name already exists.');
  }

  private async validate(em: EntityManager, accountId: number, input: IocListFields, selfId: number | null, creating: boolean): Promise<UserErrorData[]> {
    const errors: UserErrorData[] = [];
    const f = (name: string) => ['input', name];
    if (creating || input.name != null) {
      const name = input.name?.trim() ?? '';
      if (!name) errors.push(userError(UserErrorCode.REQUIRED, f('name'), 'An IOC list needs a name.'));
      else if (name.length > 100) errors.push(userError(UserErrorCode.TOO_LONG, f('name'), 'IOC list names are at most 100 characters.'));
      else {
        const clash = await em.getRepository(IocList).findOneBy({ accountId, nameKey: foldKey(name) });
        if (clash && clash.id !== selfId) errors.push(userError(UserErrorCode.TAKEN, f('name'), `An IOC list named "${clash.name}" already exists.`));
      }
    }
    if (input.severity != null && (!Number.isInteger(input.severity) || input.severity < 0 || input.severity > 5)) {
      errors.push(userError(UserErrorCode.INVALID, f('severity'), 'Severity is a whole number from 0 (no threat) to 5 (full adversarial control).'));
    }
    if (input.sourceName && input.sourceName.trim().length > 200)
      errors.push(userError(UserErrorCode.TOO_LONG, f('sourceName'), 'Source names are at most 200 characters.'));
    if (input.referenceUrl && input.referenceUrl.trim()) {
      const url = input.referenceUrl.trim();
      let valid = url.length <= 2000;
      try {
        valid = valid && ['http:', 'https:'].includes(new URL(url).protocol);
      } catch {
        valid = false;
      }
      if (!valid) errors.push(userError(UserErrorCode.INVALID, f('referenceUrl'), 'The reference URL must be an http(s) URL of at most 2,000 characters.'));
    }
    for (const field of ['entryLifetimeSeconds', 'ageingGraceSeconds'] as const) {
      const v = input[field];
      if (v == null || (!creating && v === 0)) continue;
      if (!Number.isInteger(v) || v < MIN_AGE_SECONDS || v > MAX_AGE_SECONDS)
        errors.push(
          userError(
            UserErrorCode.INVALID,
            f(field),
            `${field === 'entryLifetimeSeconds' ? 'The lifetime' : 'The grace period'} is a whole number of seconds from ${MIN_AGE_SECONDS} to ${MAX_AGE_SECONDS.toLocaleString('en-US')} (10 years)${creating ? '' : ', or 0 to remove it'}.`,
          ),
        );
    }
    if (input.description && input.description.length > 2000)
      errors.push(userError(UserErrorCode.TOO_LONG, f('description'), 'Descriptions are at most 2,000 characters.'));
    return errors;
  }
}
