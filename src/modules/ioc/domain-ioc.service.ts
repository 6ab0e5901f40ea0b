import { DataSource, In } from 'typeorm';
import { failure, Outcome, success, userError, UserErrorCode, UserErrorData } from '../../common/errors/user-error';
import { bulkInsert } from '../../db/bulk';
import { IocDomain } from './ioc-domain.entity';
import { IocList } from './ioc-list.entity';
import { IndexChanges, NO_INDEX_CHANGES } from './ioc-index.warmer';
import { checkDomainName } from './feed/domain-name';
import { IOC_DOMAIN_COLUMNS, touchDomainList } from './domain-feed-import';
import { IocEntryFields, IocLookupData, lockList, MAX_COMMENT, MAX_ENTRIES_PER_ADD } from './ioc.service';
import { AddressScope, IocListKind, LookupVerdict } from './ioc.enums';
import { PolicyIocList } from '../policy/policy-ioc-list.entity';
import { Policy } from '../policy/policy.entity';
import { Device } from '../device/device.entity';
import { requestRetroHunt } from '../retro-hunt/retro-hunt.request';
import { ConnectionData } from '../../common/pagination/connection';
import { keysetPaginate, KeysetPage } from '../../common/pagination/keyset';
import { LIKE_ESCAPE, likeContains } from '../../common/text';

export interface DomainAddResult {
  list: IocList;
  added: number;
  duplicates: number;
  domains: IocDomain[];
}

/** Entries of DOMAIN lists (IocService keeps the IP lists' and hands DOMAIN lists over). */
export class DomainIocService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly changes: IndexChanges = NO_INDEX_CHANGES,
  ) {}

  /** A list's entries in name order (the UQ_ioc_domain_list_name index); a list not the caller's, or an IP list, has none. */
  async list(accountId: number, listId: number, nameContains: string | null | undefined, page: KeysetPage): Promise<ConnectionData<IocDomain>> {
    // As IocService.list: the list's account checked once, then its rows alone (`totalCount` reads one index).
    const owned = await this.dataSource.getRepository(IocList).existsBy({ id: listId, accountId });
    const qb = this.dataSource
      .getRepository(IocDomain)
      .createQueryBuilder('d')
      .where('d.listId = :listId', { listId: owned ? listId : -1 });
    if (nameContains) qb.andWhere(`d.name LIKE :name ${LIKE_ESCAPE}`, { name: likeContains(nameContains.trim().toLowerCase().replace(/\.$/, '')) });
    return keysetPaginate(
      qb,
      'iocDomain',
      [
        { expression: 'd.name', direction: 'ASC', value: (d) => d.name },
        { expression: 'd.id', direction: 'ASC', value: (d) => d.id },
      ],
      page,
    );
  }

  /**
   * "Why is this name flagged?": every domain entry of the account that contains the name (the name itself or a
   * parent, at label boundaries), most specific first (same name: ALLOW first, then severity descending, list,
   * entry), and each policy's verdict: ALLOW wins over BLOCK, as in the matcher.
   */
  async lookup(accountId: number, name: string): Promise<IocLookupData> {
    const labels = name.split('.');
    const suffixes = labels.map((_, i) => labels.slice(i).join('.'));
    const now = Date.now();
    const entries = await this.dataSource.getRepository(IocDomain).find({ where: { accountId, name: In(suffixes) } });
    const listIds = [...new Set(entries.map((e) => e.listId))];
    const lists = listIds.length ? await this.dataSource.getRepository(IocList).findBy({ accountId, id: In(listIds) }) : [];
    const listById = new Map(lists.map((l) => [l.id, l]));
    const matches = entries
      .map((domain) => ({ domain, iocList: listById.get(domain.listId) as IocList, active: domain.expiresAt == null || domain.expiresAt.getTime() > now }))
      .sort(
        (a, b) =>
          b.domain.name.length - a.domain.name.length ||
          Number(b.iocList.kind === IocListKind.ALLOW) - Number(a.iocList.kind === IocListKind.ALLOW) ||
          b.iocList.severity - a.iocList.severity ||
          a.iocList.id - b.iocList.id ||
          a.domain.id - b.domain.id,
      );
    const links = listIds.length ? await this.dataSource.getRepository(PolicyIocList).findBy({ iocListId: In(listIds) }) : [];
    const policyIds = [...new Set(links.map((l) => l.policyId))];
    const policies = policyIds.length
      ? await this.dataSource.getRepository(Policy).find({ where: { accountId, id: In(policyIds) }, order: { name: 'ASC' } })
      : [];
    const devices = policyIds.length
      ? await this.dataSource.getRepository(Device).find({ where: { accountId, policyId: In(policyIds) }, order: { nickname: 'ASC' } })
      : [];
    return {
      address: name,
      scope: 'a domain name',
      addressScope: AddressScope.DOMAIN,
      matchable: true,
      notMatchableReason: null,
      matches: [],
      domain: name,
      domainMatches: matches,
      policies: policies.map((policy) => {
        const inPolicy = new Set(links.filter((l) => l.policyId === policy.id).map((l) => l.iocListId));
        const active = matches.filter((m) => m.active && inPolicy.has(m.iocList.id));
        const verdict = active.some((m) => m.iocList.kind === IocListKind.ALLOW)
          ? LookupVerdict.ALLOWED
          : active.some((m) => m.iocList.kind === IocListKind.BLOCK)
            ? LookupVerdict.BLOCKED
            : LookupVerdict.NOT_LISTED;
        return { policy, verdict, devices: devices.filter((d) => d.policyId === policy.id) };
      }),
    };
  }

  /**
   * Adds domains to a DOMAIN list; all-or-nothing: one invalid value refuses the call with a userError that names
   * it. Names are lowercased, Unicode names become punycode, `*.x` and `x.` mean x; URLs and addresses are refused.
   */
  async add(accountId: number, listId: number, entries: IocEntryFields[]): Promise<Outcome<DomainAddResult>> {
    const errors: UserErrorData[] = [];
    if (entries.length === 0) errors.push(userError(UserErrorCode.REQUIRED, ['input', 'entries'], 'Give at least one entry.'));
    if (entries.length > MAX_ENTRIES_PER_ADD) {
      errors.push(userError(UserErrorCode.INVALID, ['input', 'entries'], `At most ${MAX_ENTRIES_PER_ADD} entries per call; import a feed file for more.`));
    }
    const now = Date.now();
    const wanted = new Map<string, { comment: string | null; expiresAt: number | null }>();
    let repeats = 0;
    entries.slice(0, MAX_ENTRIES_PER_ADD).forEach((entry, i) => {
      const field = (name: string) => ['input', 'entries', String(i), name];
      const value = entry.value.trim();
      const r = checkDomainName(value, { toAscii: true });
      if (!r.ok) {
        const code = r.reason === 'name-too-long' || r.reason === 'label-too-long' ? UserErrorCode.TOO_LONG : UserErrorCode.INVALID;
        errors.push(userError(code, field('value'), `"${value.slice(0, 100)}" is not a domain: ${r.message}.`));
        return;
      }
      const comment = entry.comment?.trim() || null;
      if (comment && comment.length > MAX_COMMENT)
        errors.push(userError(UserErrorCode.TOO_LONG, field('comment'), `Comments are at most ${MAX_COMMENT} characters.`));
      const expiresAt = entry.expiresAt ? entry.expiresAt.getTime() : null;
      if (expiresAt != null && expiresAt <= now) errors.push(userError(UserErrorCode.INVALID, field('expiresAt'), 'expiresAt is in the past.'));
      if (wanted.has(r.name)) repeats++;
      else wanted.set(r.name, { comment, expiresAt });
    });
    if (errors.length) return failure(...errors);
    const outcome = await this.dataSource.transaction(async (em) => {
      const list = await lockList(em, accountId, listId);
      if (!list) return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'list'], 'No IOC list with this ID.'));
      const rows = [...wanted].map(([name, w]) => [list.id, accountId, name, w.comment, w.expiresAt, now]);
      const added = await bulkInsert(em, 'ioc_domain', IOC_DOMAIN_COLUMNS, rows, { ignoreDuplicates: true });
      await touchDomainList(em, list, added, false);
      const stored = await em.getRepository(IocDomain).find({ where: { listId: list.id, name: In([...wanted.keys()]) }, order: { name: 'ASC', id: 'ASC' } });
      // The entries this call created (the others were there already) re-judge the stored uploads that asked them (#17, #18).
      const created = stored.filter((e) => e.createdAt.getTime() === now).map((e) => e.name);
      if (created.length)
        await requestRetroHunt(em, accountId, {
          target: { lists: [list.id] },
          domains: created,
          cause: `${created.length} entr${created.length === 1 ? 'y' : 'ies'} added to list ${list.id}.`,
        });
      return success({ list, added, duplicates: repeats + (wanted.size - added), domains: stored });
    });
    if (outcome.ok && outcome.value.added > 0) this.changes.listsChanged([outcome.value.list.id]);
    return outcome;
  }
}
