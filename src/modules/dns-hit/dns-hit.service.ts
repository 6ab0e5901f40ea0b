import { Brackets, DataSource, In, SelectQueryBuilder } from 'typeorm';
import { ConnectionData } from '../../common/pagination/connection';
import { keysetPaginate, KeysetPage } from '../../common/pagination/keyset';
import { badUserInput } from '../../common/errors/graphql-errors';
import { resolveHitFilter } from '../flow-hit/hit-filter';
import { HitKind } from '../flow-hit/flow-hit.enums';
import { applyDnsConditions } from '../report/groupings/dns-source';
import { checkDomainName } from '../ioc/feed/domain-name';
import { IocDomain } from '../ioc/ioc-domain.entity';
import { DnsHit } from './dns-hit.entity';
import { DnsHitFilter } from './dns-hit.inputs';

/** What linking a flow hit to a DNS hit needs of it. */
export interface FlowHitRef {
  uploadId: number;
  externalIp: string;
  firstSeenAt: Date;
}

export interface DomainHitStats {
  /** Queries (the hits' counts summed). */
  hits: number;
  firstSeenAt: Date | null;
  lastSeenAt: Date | null;
}

/** The name as dns_hit stores qname (lowercase ASCII, punycode, no trailing dot); BAD_USER_INPUT when it is no domain. */
function domainName(text: string, field: string): string {
  const r = checkDomainName(text.trim(), { toAscii: true });
  if (!r.ok) throw badUserInput(`${field}: "${text.slice(0, 100)}" is not a domain: ${r.message}.`);
  return r.name;
}

/** `h.qname` is the name or a name under it (a suffix at a label boundary; SUBSTR with a negative start on both databases). */
function underName(qb: SelectQueryBuilder<DnsHit>, name: string): void {
  qb.andWhere(
    new Brackets((b) =>
      b.where('h.qname = :qname', { qname: name }).orWhere('SUBSTR(h.qname, :qfrom) = :qsuffix', { qfrom: -(name.length + 1), qsuffix: `.${name}` }),
    ),
  );
}

/** Reads dns_hit (HitWriter writes it); every read is scoped to the caller's account. */
export class DnsHitService {
  constructor(private readonly dataSource: DataSource) {}

  async findMany(accountId: number, ids: readonly number[]): Promise<(DnsHit | null)[]> {
    const rows = ids.length ? await this.dataSource.getRepository(DnsHit).findBy({ accountId, id: In([...ids]) }) : [];
    const byId = new Map(rows.map((r) => [r.id, r]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  /** Domain entries by id (the hits' matched entries), in key order; null when removed since or another account's. */
  async domainEntries(accountId: number, ids: readonly number[]): Promise<(IocDomain | null)[]> {
    const rows = ids.length ? await this.dataSource.getRepository(IocDomain).findBy({ accountId, id: In([...ids]) }) : [];
    const byId = new Map(rows.map((r) => [r.id, r]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  /** DNS hits matching a filter, newest first (first query's capture time, then id), a keyset page at a time. */
  async search(accountId: number, filter: DnsHitFilter, page: KeysetPage): Promise<ConnectionData<DnsHit>> {
    const { name, ...rest } = filter;
    const f = resolveHitFilter(accountId, { ...rest, kind: HitKind.DNS });
    const qb = this.dataSource.getRepository(DnsHit).createQueryBuilder('h').where('1 = 1');
    // The conditions hitReport's DNS groupings apply, so a report row drills down to exactly its hits.
    applyDnsConditions(qb, f);
    if (name != null) underName(qb, domainName(name, 'filter.name'));
    return keysetPaginate(
      qb,
      'dnshits',
      [
        { expression: 'h.firstSeenAt', direction: 'DESC', value: (h) => h.firstSeenAt.getTime() },
        { expression: 'h.id', direction: 'DESC', value: (h) => h.id },
      ],
      page,
    );
  }

  /**
   * The DNS hit each flow hit followed, in key order: of its upload's DNS hits whose answers hold the flow hit's
   * external address (`A x` / `AAAA x`), the latest whose first query came at or before the connection's first
   * packet; null when none did. One query per batch of uploads; an upload's DNS hits are few (one per host and name).
   */
  async followedBy(accountId: number, hits: readonly FlowHitRef[]): Promise<(DnsHit | null)[]> {
    const uploads = [...new Set(hits.map((h) => h.uploadId))];
    const rows = uploads.length
      ? await this.dataSource.getRepository(DnsHit).find({ where: { accountId, uploadId: In(uploads) }, order: { firstSeenAt: 'DESC', id: 'DESC' } })
      : [];
    const byUpload = new Map<number, Array<{ hit: DnsHit; answers: Set<string> }>>();
    for (const hit of rows) {
      const answers = new Set((JSON.parse(hit.answers) as string[]).map((a) => a.slice(a.indexOf(' ') + 1)));
      const list = byUpload.get(hit.uploadId);
      if (list) list.push({ hit, answers });
      else byUpload.set(hit.uploadId, [{ hit, answers }]);
    }
    return hits.map((f) => {
      const at = f.firstSeenAt.getTime();
      const found = (byUpload.get(f.uploadId) ?? []).find((d) => d.hit.firstSeenAt.getTime() <= at && d.answers.has(f.externalIp));
      return found ? found.hit : null;
    });
  }

  /** DNS hits (rows) of each upload, in key order. */
  async countsOfUploads(accountId: number, uploadIds: readonly number[]): Promise<number[]> {
    const rows: Array<{ upload_id: number | string; n: number | string }> = uploadIds.length
      ? await this.dataSource.query(
          `SELECT upload_id, COUNT(*) AS n FROM dns_hit WHERE account_id = ? AND upload_id IN (${uploadIds.map(() => '?').join(',')}) GROUP BY upload_id`,
          [accountId, ...uploadIds],
        )
      : [];
    const byUpload = new Map(rows.map((r) => [Number(r.upload_id), Number(r.n)]));
    return uploadIds.map((id) => byUpload.get(id) ?? 0);
  }

  /** iocLookup of a domain: the queries for the name or a name under it, and their first/last capture time. */
  async nameStats(accountId: number, name: string): Promise<DomainHitStats> {
    const qb = this.dataSource
      .getRepository(DnsHit)
      .createQueryBuilder('h')
      .select('SUM(h.hitCount)', 'hits')
      .addSelect('MIN(h.firstSeenAt)', 'first')
      .addSelect('MAX(h.lastSeenAt)', 'last')
      .where('h.accountId = :accountId', { accountId });
    underName(qb, name);
    const r: Record<string, string | number | null> = (await qb.getRawOne()) ?? {};
    const hits = Number(r.hits ?? 0);
    return { hits, firstSeenAt: hits ? new Date(Number(r.first)) : null, lastSeenAt: hits ? new Date(Number(r.last)) : null };
  }
}
