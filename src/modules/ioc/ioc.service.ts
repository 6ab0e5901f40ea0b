import { DataSource, EntityManager, In } from 'typeorm';
import { badUserInput } from '../../common/errors/graphql-errors';
import { failure, Outcome, success, userError, UserErrorCode, UserErrorData } from '../../common/errors/user-error';
import { Cidr, parseCidr, parseCidrOrRange } from '../../common/net/cidr';
import { parseIp, unmapIp, ParsedIp, isInternetRoutable, classifyIp, describeScope } from '../../common/net/ip';
import { ConnectionData } from '../../common/pagination/connection';
import { keysetPaginate, KeysetPage } from '../../common/pagination/keyset';
import { LIKE_ESCAPE, likeContains } from '../../common/text';
import { bulkInsert, dialectOf } from '../../db/bulk';
import { Device } from '../device/device.entity';
import { PolicyIocList } from '../policy/policy-ioc-list.entity';
import { Policy } from '../policy/policy.entity';
import { addressScopeOf, AddressScope, IocEntryKind, IocListKind, LookupVerdict } from './ioc.enums';
import { IocDomain } from './ioc-domain.entity';
import { DomainIocService } from './domain-ioc.service';
import { checkDomainName } from './feed/domain-name';
import { Ioc } from './ioc.entity';
import { IocScope } from './ioc-scope.entity';
import { IocList } from './ioc-list.entity';
import { IndexChanges, NO_INDEX_CHANGES } from './ioc-index.warmer';
import { cidrRangeKeys, ipKey, lowestContainingStartKey } from './ioc-range';
import { requestRetroHunt } from '../retro-hunt/retro-hunt.request';
import { findByIds } from '../../db/find-by-ids';

export interface IocEntryFields {
  value: string;
  comment?: string | null;
  expiresAt?: Date | null;
}

export interface IocFilterData {
  /** Entries that contain this address. */
  address?: string | null;
  /** Entries that lie inside this network. */
  within?: string | null;
  commentContains?: string | null;
}

export interface IocAddResult {
  list: IocList;
  added: number;
  duplicates: number;
  entries: Ioc[];
  /** DOMAIN lists: the list's entries for the given names (entries is empty). */
  domains?: IocDomain[];
}

export interface IocRemoveResult {
  removed: Ioc[];
  /** DOMAIN lists' entries removed. */
  removedDomains: IocDomain[];
}

export interface IocLookupData {
  address: string;
  scope: string;
  addressScope: AddressScope;
  matchable: boolean;
  /** Why uploads never match it; null when they may. */
  notMatchableReason: string | null;
  matches: Array<{ ioc: Ioc; iocList: IocList; active: boolean }>;
  /** A domain lookup (#18): the normalised name and the containing domain entries; null / empty for an address. */
  domain: string | null;
  domainMatches: Array<{ domain: IocDomain; iocList: IocList; active: boolean }>;
  policies: Array<{ policy: Policy; verdict: LookupVerdict; devices: Device[] }>;
}

export const MAX_ENTRIES_PER_ADD = 1000;
export const MAX_COMMENT = 500;
export const IOC_COLUMNS = ['list_id', 'account_id', 'cidr', 'family', 'prefix', 'range_start', 'range_end', 'comment', 'expires_at', 'created_at'] as const;

/** One `ioc` table row, in IOC_COLUMNS order. */
export function iocRow(accountId: number, listId: number, cidr: Cidr, comment: string | null, expiresAt: number | null, now: number): unknown[] {
  const { start, end } = cidrRangeKeys(cidr);
  return [listId, accountId, cidr.text, cidr.family, cidr.prefix, start, end, comment, expiresAt, now];
}

export class IocService {
  constructor(
    private readonly dataSource: DataSource,
    /** Told after commit when a change makes matcher indexes stale (background rebuild). */
    private readonly changes: IndexChanges = NO_INDEX_CHANGES,
  ) {}

  async findMany(accountId: number, ids: readonly number[]): Promise<(Ioc | null)[]> {
    return findByIds(this.dataSource, Ioc, accountId, ids);
  }

  /** The scope rows of each entry (ioc-scope.entity.ts), in device then host order; none: it applies in the whole policy. */
  async scopesOf(accountId: number, ids: readonly number[]): Promise<IocScope[][]> {
    const rows = ids.length
      ? await this.dataSource.getRepository(IocScope).find({ where: { accountId, iocId: In([...ids]) }, order: { deviceId: 'ASC', internalHost: 'ASC' } })
      : [];
    return ids.map((id) => rows.filter((r) => r.iocId === id));
  }

  /** A DOMAIN list's entries in name order (DomainIocService.list). */
  listDomains(accountId: number, listId: number, nameContains: string | null | undefined, page: KeysetPage): Promise<ConnectionData<IocDomain>> {
    return new DomainIocService(this.dataSource, this.changes).list(accountId, listId, nameContains, page);
  }

  /** Entries of one list; a list that is not the caller's yields an empty page, exactly like a missing one. */
  async list(accountId: number, listId: number | null, filter: IocFilterData | null | undefined, page: KeysetPage): Promise<ConnectionData<Ioc>> {
    // The list's account is checked once; then its rows alone are read (a list's rows are all its account's), so
    // `totalCount` reads only the (list_id, id) index: 40 ms for a 1M-entry list on SQLite, against 200-400 ms of
    // the event loop when every row was read for its account_id.
    const owned = listId != null && (await this.dataSource.getRepository(IocList).existsBy({ id: listId, accountId }));
    const qb = this.dataSource
      .getRepository(Ioc)
      .createQueryBuilder('i')
      .where('i.listId = :listId', { listId: owned ? listId : -1 });
    if (filter?.address != null) {
      const ip = parseIp(filter.address.trim());
      if (!ip) throw badUserInput(`filter.address: "${filter.address.slice(0, 60)}" is not an IPv4 or IPv6 address.`);
      containing(qb, ip);
    }
    if (filter?.within != null) {
      const net = parseCidr(filter.within.trim(), { minPrefixV4: 0, minPrefixV6: 0 });
      if (!net.ok) throw badUserInput(`filter.within: ${net.message}`);
      const { start, end } = cidrRangeKeys(net.cidr);
      qb.andWhere('i.rangeStart >= :wStart AND i.rangeEnd <= :wEnd', { wStart: start, wEnd: end });
    }
    if (filter?.commentContains) qb.andWhere(`LOWER(i.comment) LIKE :comment ${LIKE_ESCAPE}`, { comment: likeContains(filter.commentContains) });
    return keysetPaginate(
      qb,
      'ioc',
      [
        { expression: 'i.rangeStart', direction: 'ASC', value: (i) => i.rangeStart },
        { expression: 'i.id', direction: 'ASC', value: (i) => i.id },
      ],
      page,
    );
  }

  /** Adds entries (addresses, CIDRs or ranges); all-or-nothing: one bad value refuses the whole call. */
  async add(accountId: number, listId: number | null, entries: IocEntryFields[]): Promise<Outcome<IocAddResult>> {
    if (listId != null) {
      const target = await this.dataSource.getRepository(IocList).findOne({ where: { id: listId, accountId }, select: { id: true, entryKind: true } });
      if (target?.entryKind === IocEntryKind.DOMAIN) {
        const r = await new DomainIocService(this.dataSource, this.changes).add(accountId, listId, entries);
        return r.ok ? success({ list: r.value.list, added: r.value.added, duplicates: r.value.duplicates, entries: [], domains: r.value.domains }) : r;
      }
    }
    const errors: UserErrorData[] = [];
    if (entries.length === 0) errors.push(userError(UserErrorCode.REQUIRED, ['input', 'entries'], 'Give at least one entry.'));
    if (entries.length > MAX_ENTRIES_PER_ADD) {
      errors.push(userError(UserErrorCode.INVALID, ['input', 'entries'], `At most ${MAX_ENTRIES_PER_ADD} entries per call; import a feed file for more.`));
    }
    const now = Date.now();
    const wanted = new Map<string, { cidr: Cidr; comment: string | null; expiresAt: number | null }>();
    let repeats = 0;
    entries.slice(0, MAX_ENTRIES_PER_ADD).forEach((entry, i) => {
      const field = (name: string) => ['input', 'entries', String(i), name];
      const parsed = parseCidrOrRange(entry.value.trim());
      if (!parsed.ok) {
        errors.push(userError(parsed.reason === 'tooBroad' ? UserErrorCode.TOO_BROAD : UserErrorCode.INVALID, field('value'), parsed.message));
        return;
      }
      const comment = entry.comment?.trim() || null;
      if (comment && comment.length > MAX_COMMENT)
        errors.push(userError(UserErrorCode.TOO_LONG, field('comment'), `Comments are at most ${MAX_COMMENT} characters.`));
      const expiresAt = entry.expiresAt ? entry.expiresAt.getTime() : null;
      if (expiresAt != null && expiresAt <= now) errors.push(userError(UserErrorCode.INVALID, field('expiresAt'), 'expiresAt is in the past.'));
      for (const cidr of parsed.cidrs) {
        if (wanted.has(cidr.text)) repeats++;
        else wanted.set(cidr.text, { cidr, comment, expiresAt });
      }
    });
    if (errors.length) return failure(...errors);
    const outcome = await this.dataSource.transaction(async (em) => {
      const list = await lockList(em, accountId, listId);
      if (!list) return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'list'], 'No IOC list with this ID.'));
      const rows = [...wanted.values()].map((w) => iocRow(accountId, list.id, w.cidr, w.comment, w.expiresAt, now));
      const added = await bulkInsert(em, 'ioc', IOC_COLUMNS, rows, { ignoreDuplicates: true });
      await touchList(em, list, added, false);
      const stored = await em.getRepository(Ioc).find({ where: { listId: list.id, cidr: In([...wanted.keys()]) }, order: { rangeStart: 'ASC', id: 'ASC' } });
      // The entries this call created (the others were there already) re-judge the stored uploads they meet (#17).
      const created = stored.filter((e) => e.createdAt.getTime() === now).map((e) => ({ start: e.rangeStart, end: e.rangeEnd }));
      if (created.length)
        await requestRetroHunt(em, accountId, {
          target: { lists: [list.id] },
          ranges: created,
          cause: `${created.length} entr${created.length === 1 ? 'y' : 'ies'} added to list ${list.id}.`,
        });
      return success({ list, added, duplicates: repeats + (wanted.size - added), entries: stored });
    });
    if (outcome.ok && outcome.value.added > 0) this.changes.listsChanged([outcome.value.list.id]);
    return outcome;
  }

  /**
   * Allows entries on an ALLOW list, in the whole policy (`scope` null) or only on one device or one internal host of
   * it (ioc-scope.entity.ts); FALSE_POSITIVE verdicts use it (hit-triage.service.ts). In one transaction with the
   * retro-hunt it requests, so no upload is ever judged with a scoped entry taken for a policy-wide one:
   * - a new entry is inserted with its scope rows;
   * - an entry there already without scope rows allows in the whole policy already: a scope adds nothing;
   * - an entry there with scope rows gains the new scopes, or loses them all when `scope` is null (the whole policy).
   */
  async addAllows(
    accountId: number,
    listId: number,
    allows: ReadonlyArray<{ cidr: string; scope: { deviceId: number; internalHost: string | null } | null }>,
    comment: string | null,
  ): Promise<Outcome<{ changed: number }>> {
    const parsed = new Map<string, Cidr>();
    const canonical: string[] = [];
    for (const a of allows) {
      // The CIDR of a stored entry (a hit's match): taken as it is, whatever limits applied when it was stored.
      const c = parseCidr(a.cidr, { minPrefixV4: 0, minPrefixV6: 0 });
      if (!c.ok) return failure(userError(UserErrorCode.INVALID, ['input'], `"${a.cidr.slice(0, 60)}": ${c.message}`));
      parsed.set(c.cidr.text, c.cidr);
      canonical.push(c.cidr.text);
    }
    const now = Date.now();
    const outcome = await this.dataSource.transaction(async (em) => {
      const list = await lockList(em, accountId, listId);
      if (!list || list.kind !== IocListKind.ALLOW || list.entryKind === IocEntryKind.DOMAIN) {
        return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'list'], 'No address ALLOW list with this ID.'));
      }
      const existing = async () =>
        new Map(
          (
            await em
              .getRepository(Ioc)
              .find({ where: { listId, cidr: In([...parsed.keys()]) }, select: { id: true, cidr: true, rangeStart: true, rangeEnd: true } })
          ).map((e) => [e.cidr, e]),
        );
      let entries = await existing();
      const fresh = [...parsed.values()].filter((c) => !entries.has(c.text));
      const added = fresh.length
        ? await bulkInsert(
            em,
            'ioc',
            IOC_COLUMNS,
            fresh.map((c) => iocRow(accountId, listId, c, comment, null, now)),
            { ignoreDuplicates: true },
          )
        : 0;
      if (fresh.length) entries = await existing();
      const ids = [...entries.values()].map((e) => e.id);
      const scopeRows: Array<{ ioc_id: number | string; device_id: number | string; internal_host: string }> = ids.length
        ? await em.query(`SELECT ioc_id, device_id, internal_host FROM ioc_scope WHERE ioc_id IN (${ids.map(() => '?').join(',')})`, ids)
        : [];
      const scoped = new Set(scopeRows.map((r) => Number(r.ioc_id)));
      const freshIds = new Set(fresh.map((c) => entries.get(c.text)?.id));
      const widen: number[] = [];
      const newScopes: unknown[][] = [];
      const changedRanges: Array<{ start: string; end: string }> = [];
      const devices = new Set<number>();
      let policyWide = false;
      // A network allowed in the whole policy by this call takes no scope from it.
      const wide = new Set(canonical.filter((_, i) => allows[i].scope == null));
      for (const [i, a] of allows.entries()) {
        const e = entries.get(canonical[i]);
        if (!e || (a.scope != null && wide.has(canonical[i]))) continue;
        const isNew = freshIds.has(e.id);
        if (a.scope == null) {
          // The whole policy: a new entry, or a scoped one widened.
          if (isNew || scoped.has(e.id)) {
            if (scoped.has(e.id)) widen.push(e.id);
            changedRanges.push({ start: e.rangeStart, end: e.rangeEnd });
            policyWide = true;
          }
        } else if (isNew || scoped.has(e.id)) {
          newScopes.push([accountId, e.id, listId, a.scope.deviceId, a.scope.internalHost ?? '', now]);
          changedRanges.push({ start: e.rangeStart, end: e.rangeEnd });
          devices.add(a.scope.deviceId);
        }
      }
      if (widen.length) await em.query(`DELETE FROM ioc_scope WHERE ioc_id IN (${widen.map(() => '?').join(',')})`, widen);
      const scopesAdded = newScopes.length
        ? await bulkInsert(em, 'ioc_scope', ['account_id', 'ioc_id', 'list_id', 'device_id', 'internal_host', 'created_at'], newScopes, {
            ignoreDuplicates: true,
          })
        : 0;
      const changed = added + widen.length + scopesAdded;
      if (changed === 0) return success({ changed: 0 });
      await touchList(em, list, added, false, false, true);
      await requestRetroHunt(em, accountId, {
        // Scoped allows re-judge only their devices' uploads; a policy-wide one every device the list reaches.
        target: policyWide ? { lists: [listId] } : { devices: [...devices] },
        ranges: changedRanges,
        cause: `${changed} allow${changed === 1 ? '' : 's'} added to list ${listId}${policyWide ? '' : ` for device${devices.size === 1 ? '' : 's'} ${[...devices].join(', ')}`}.`,
      });
      return success({ changed });
    });
    if (outcome.ok && outcome.value.changed > 0) this.changes.listsChanged([listId]);
    return outcome;
  }

  /**
   * Removes entries by ID (an address entry's number, or `{ domain }` for a DOMAIN list's entry); all-or-nothing: an
   * ID that is not the caller's refuses the call.
   */
  async remove(accountId: number, ids: (number | { domain: number } | null)[]): Promise<Outcome<IocRemoveResult>> {
    if (ids.length === 0) return failure(userError(UserErrorCode.REQUIRED, ['input', 'ids'], 'Give at least one entry ID.'));
    if (ids.length > MAX_ENTRIES_PER_ADD) return failure(userError(UserErrorCode.INVALID, ['input', 'ids'], `At most ${MAX_ENTRIES_PER_ADD} IDs per call.`));
    const outcome = await this.dataSource.transaction(async (em) => {
      const valid = ids.filter((id): id is number => typeof id === 'number');
      const validDomains = ids.flatMap((id) => (id != null && typeof id === 'object' ? [id.domain] : []));
      // Their lists are locked before any of their rows, in ID order, as imports and iocAdd lock a list before its
      // rows: deleting rows first and then waiting for a list an import holds deadlocked the two on MySQL. The
      // entries are then read again with their rows locked (a locking read sees what an import committed meanwhile).
      const listIds = new Set<number>();
      if (valid.length)
        for (const e of await em.getRepository(Ioc).find({ select: { id: true, listId: true }, where: { accountId, id: In(valid) } })) listIds.add(e.listId);
      if (validDomains.length)
        for (const e of await em.getRepository(IocDomain).find({ select: { id: true, listId: true }, where: { accountId, id: In(validDomains) } }))
          listIds.add(e.listId);
      for (const lid of [...listIds].sort((a, b) => a - b)) await lockList(em, accountId, lid);
      const lock = dialectOf(em) === 'mysql' ? { lock: { mode: 'pessimistic_write' as const } } : {};
      const found = valid.length ? await em.getRepository(Ioc).find({ where: { accountId, id: In(valid) }, ...lock }) : [];
      const foundDomains = validDomains.length ? await em.getRepository(IocDomain).find({ where: { accountId, id: In(validDomains) }, ...lock }) : [];
      const foundIds = new Set(found.map((f) => f.id));
      const foundDomainIds = new Set(foundDomains.map((f) => f.id));
      const errors = ids
        .map((id, i) =>
          id == null || (typeof id === 'number' ? !foundIds.has(id) : !foundDomainIds.has(id.domain))
            ? userError(UserErrorCode.NOT_FOUND, ['input', 'ids', String(i)], 'No IOC entry with this ID.')
            : null,
        )
        .filter((e): e is UserErrorData => e != null);
      if (errors.length) return failure(...errors);
      if (foundIds.size) await em.getRepository(Ioc).delete({ accountId, id: In([...foundIds]) });
      if (foundDomainIds.size) await em.getRepository(IocDomain).delete({ accountId, id: In([...foundDomainIds]) });
      const perList = new Map<number, number>();
      for (const f of [...found, ...foundDomains]) perList.set(f.listId, (perList.get(f.listId) ?? 0) + 1);
      for (const [lid, n] of perList) {
        const list = await lockList(em, accountId, lid);
        if (list) await touchList(em, list, -n, false);
        const ranges = found.filter((f) => f.listId === lid).map((f) => ({ start: f.rangeStart, end: f.rangeEnd }));
        const domains = foundDomains.filter((f) => f.listId === lid).map((f) => f.name);
        await requestRetroHunt(em, accountId, {
          target: { lists: [lid] },
          ranges,
          domains,
          cause: `${n} entr${n === 1 ? 'y' : 'ies'} removed from list ${lid}.`,
        });
      }
      return success({ removed: found, removedDomains: foundDomains });
    });
    if (outcome.ok) this.changes.listsChanged([...new Set([...outcome.value.removed, ...outcome.value.removedDomains].map((e) => e.listId))]);
    return outcome;
  }

  /** "Why is this address flagged?": every containing entry in the account, and what each policy makes of it. */
  async lookup(accountId: number, address: string): Promise<IocLookupData> {
    const parsed = parseIp(address.trim());
    if (!parsed) {
      const name = checkDomainName(address.trim(), { toAscii: true });
      if (name.ok) return new DomainIocService(this.dataSource, this.changes).lookup(accountId, name.name);
      throw badUserInput(`"${address.slice(0, 60)}" is not an IPv4 or IPv6 address or a domain name.`);
    }
    const ip = unmapIp(parsed);
    const now = Date.now();
    // The account's IP lists, read once: the entries are read from them, and each match names its list from here (a
    // list deleted after this read took its entries with it, or leaves its row here for entries read before).
    const accountLists = await this.dataSource.getRepository(IocList).find({ where: { accountId, entryKind: IocEntryKind.IP }, order: { id: 'ASC' } });
    const listById = new Map(accountLists.map((l) => [l.id, l]));
    const entries = accountLists.length ? await containingEntries(this.dataSource, accountId, [...listById.keys()], ip).getMany() : [];
    const listIds = [...new Set(entries.map((e) => e.listId))];
    const matches = entries.map((ioc) => ({
      ioc,
      iocList: listById.get(ioc.listId) as IocList,
      active: ioc.expiresAt == null || ioc.expiresAt.getTime() > now,
    }));
    const allowIds = matches.filter((m) => m.iocList.kind === IocListKind.ALLOW).map((m) => m.ioc.id);
    const scopedIds = new Set(
      allowIds.length
        ? (await this.dataSource.getRepository(IocScope).find({ where: { iocId: In(allowIds) }, select: { iocId: true } })).map((r) => r.iocId)
        : [],
    );
    const links = listIds.length ? await this.dataSource.getRepository(PolicyIocList).findBy({ iocListId: In(listIds) }) : [];
    const policyIds = [...new Set(links.map((l) => l.policyId))];
    const policies = policyIds.length
      ? await this.dataSource.getRepository(Policy).find({ where: { accountId, id: In(policyIds) }, order: { name: 'ASC' } })
      : [];
    const devices = policyIds.length
      ? await this.dataSource.getRepository(Device).find({ where: { accountId, policyId: In(policyIds) }, order: { nickname: 'ASC' } })
      : [];
    const matchable = isInternetRoutable(ip);
    const ipScope = classifyIp(ip);
    const scope = describeScope(ipScope);
    return {
      address: ip.text,
      scope,
      addressScope: addressScopeOf(ipScope),
      matchable,
      notMatchableReason: matchable
        ? null
        : `It is ${scope}: uploads match only addresses that can cross the internet, so no list entry makes it a hit (bogon lists stay quiet about LAN chatter).`,
      matches,
      domain: null,
      domainMatches: [],
      policies: policies.map((policy) => {
        const inPolicy = new Set(links.filter((l) => l.policyId === policy.id).map((l) => l.iocListId));
        // An ALLOW entry limited to devices or hosts (ioc_scope) does not allow in the whole policy.
        const active = matches.filter((m) => m.active && inPolicy.has(m.iocList.id) && !(m.iocList.kind === IocListKind.ALLOW && scopedIds.has(m.ioc.id)));
        // An address the matcher never looks up is never blocked, whatever lists contain it; ALLOW wins over BLOCK, as in the matcher.
        const verdict = !matchable
          ? LookupVerdict.NOT_MATCHABLE
          : active.some((m) => m.iocList.kind === IocListKind.ALLOW)
            ? LookupVerdict.ALLOWED
            : active.some((m) => m.iocList.kind === IocListKind.BLOCK)
              ? LookupVerdict.BLOCKED
              : LookupVerdict.NOT_LISTED;
        return { policy, verdict, devices: devices.filter((d) => d.policyId === policy.id) };
      }),
    };
  }
}

/**
 * A device is being deleted (in `em`'s transaction): the ALLOW entries limited to it alone are deleted with it. The
 * cascade would take their scope rows only, and an ALLOW entry without scope rows allows in the whole policy.
 * Entries also limited to other devices keep those scopes. Returns how many entries went.
 */
export async function dropDeviceOnlyAllows(em: EntityManager, accountId: number, deviceId: number): Promise<number> {
  const only: Array<{ ioc_id: number | string; list_id: number | string }> = await em.query(
    `SELECT DISTINCT s.ioc_id, s.list_id FROM ioc_scope s
      WHERE s.account_id = ? AND s.device_id = ? AND NOT EXISTS (SELECT 1 FROM ioc_scope o WHERE o.ioc_id = s.ioc_id AND o.device_id <> ?)`,
    [accountId, deviceId, deviceId],
  );
  if (only.length === 0) return 0;
  const perList = new Map<number, number[]>();
  for (const r of only) perList.set(Number(r.list_id), [...(perList.get(Number(r.list_id)) ?? []), Number(r.ioc_id)]);
  for (const [listId, ids] of perList) {
    const list = await lockList(em, accountId, listId);
    await em.getRepository(Ioc).delete({ accountId, id: In(ids) });
    if (list) await touchList(em, list, -ids.length, false);
  }
  return only.length;
}

/**
 * The entries of the account's lists `listIds` whose range contains `ip`, longest prefix first: one bounded scan
 * of the `(list_id, range_start)` index per list. (There is no account-wide index on `ioc`: every feed import would
 * keep one more index of a million keys up to date, interleaved with the account's other lists.)
 */
export function containingEntries(ds: DataSource, accountId: number, listIds: readonly number[], ip: ParsedIp) {
  const qb = ds.getRepository(Ioc).createQueryBuilder('i').where('i.listId IN (:...listIds) AND i.accountId = :accountId', { listIds, accountId });
  containing(qb, ip);
  return qb.orderBy('i.prefix', 'DESC').addOrderBy('i.id', 'ASC');
}

/** Restricts a query on `i` to entries whose range contains `ip` (bounded scan, see lowestContainingStartKey). */
function containing(qb: { andWhere(sql: string, params: object): unknown }, ip: ParsedIp): void {
  const k = ipKey(ip);
  qb.andWhere('i.rangeStart >= :low AND i.rangeStart <= :k AND i.rangeEnd >= :k', { low: lowestContainingStartKey(ip), k });
}

/** Loads a list of the account, taking its row lock on MySQL so concurrent writers serialise on the count. */
export async function lockList(em: EntityManager, accountId: number, listId: number | null): Promise<IocList | null> {
  if (listId == null) return null;
  const qb = em.getRepository(IocList).createQueryBuilder('l').where('l.id = :listId AND l.accountId = :accountId', { listId, accountId });
  if (em.connection.options.type !== 'better-sqlite3') qb.setLock('pessimistic_write');
  return qb.getOne();
}

/**
 * Records a change of entries in the same transaction: count, revision (the matcher index's freshness
 * key) and times. `recount` replaces the incremental count with a COUNT(*) (after REPLACE imports).
 */
export async function touchList(
  em: EntityManager,
  list: IocList,
  delta: number,
  recount: boolean,
  imported = false,
  /** Entries changed even if the count did not (as many added as removed): the revision must move. */
  changed = false,
): Promise<void> {
  const now = new Date();
  if (recount) list.entryCount = await em.getRepository(Ioc).countBy({ listId: list.id });
  else list.entryCount += delta;
  if (delta !== 0 || recount || changed) list.revision += 1;
  list.updatedAt = now;
  if (imported) list.lastImportedAt = now;
  await em
    .getRepository(IocList)
    .update({ id: list.id }, { entryCount: list.entryCount, revision: list.revision, updatedAt: now, ...(imported ? { lastImportedAt: now } : {}) });
}
