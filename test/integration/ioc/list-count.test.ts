import { createTestApp, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';
import { watchStatements } from '../../helpers/sql-count';
import { bulkInsert } from '../../../src/db/bulk';
import { cidr4 } from '../../../src/common/net/cidr';
import { IOC_COLUMNS, iocRow } from '../../../src/modules/ioc/ioc.service';
import { IOC_DOMAIN_COLUMNS } from '../../../src/modules/ioc/domain-feed-import';
import { IocCategory, IocEntryKind, IocListKind } from '../../../src/modules/ioc/ioc.enums';

/**
 * `iocs { totalCount }` and `IocList.domains { totalCount }` of a whole list: the count filtered on the account as
 * well as the list, so SQLite read every row of the list for its account_id (200-400 ms of the event loop for a
 * 1M-entry list). The list's account is checked once instead and the count reads one index only; another
 * account's list still counts 0, exactly like a missing one.
 */
describe.each(drivers)('counting a list (%s)', (driver) => {
  let t: TestApp;
  let otherAccount: number;
  let ips: number;
  let names: number;
  const N = 2_000;

  beforeAll(async () => {
    t = await createTestApp(driver);
    const other = await t.services.accounts.createAccount(`count-other-${driver}`);
    const a = await t.services.iocLists.create(t.accountId, { name: 'ips', kind: IocListKind.BLOCK, severity: 3, category: IocCategory.SCANNER });
    const b = await t.services.iocLists.create(t.accountId, {
      name: 'names',
      kind: IocListKind.BLOCK,
      severity: 3,
      category: IocCategory.PHISHING,
      entryKind: IocEntryKind.DOMAIN,
    });
    if (!other.ok || !a.ok || !b.ok) throw new Error('setup');
    otherAccount = other.value.id;
    ips = a.value.id;
    names = b.value.id;
    const now = Date.now();
    await t.dataSource.transaction(async (em) => {
      await bulkInsert(
        em,
        'ioc',
        IOC_COLUMNS,
        Array.from({ length: N }, (_, i) => iocRow(t.accountId, ips, cidr4((10 << 24) + i * 4, 30), null, null, now)),
      );
      await bulkInsert(
        em,
        'ioc_domain',
        IOC_DOMAIN_COLUMNS,
        Array.from({ length: N }, (_, i) => [names, t.accountId, `host${i}.example`, null, null, now]),
      );
    });
    if (driver === 'mysql') {
      await t.dataSource.query('ANALYZE TABLE ioc');
      await t.dataSource.query('ANALYZE TABLE ioc_domain');
    }
  });

  afterAll(() => t.close());

  /** The COUNT statement `count` runs, with its parameters. */
  async function countStatement(count: () => Promise<number>): Promise<{ total: number; sql: string; parameters: unknown[] }> {
    let total = -1;
    const seen: Array<{ sql: string; parameters: unknown[] }> = [];
    await watchStatements(
      t.dataSource,
      async () => {
        total = await count();
      },
      (sql, parameters) => seen.push({ sql, parameters }),
    );
    const counting = seen.filter((s) => /COUNT\(/i.test(s.sql));
    expect(counting).toHaveLength(1);
    return { total, ...counting[0] };
  }

  async function expectIndexOnly(sql: string, parameters: unknown[]): Promise<void> {
    if (driver === 'sqlite') {
      const plan: Array<{ detail: string }> = await t.dataSource.query(`EXPLAIN QUERY PLAN ${sql}`, parameters);
      expect(plan.map((p) => p.detail).join(' | ')).toMatch(/USING COVERING INDEX/);
    } else {
      const plan: Array<{ Extra: string | null }> = await t.dataSource.query(`EXPLAIN ${sql}`, parameters);
      expect(plan).toHaveLength(1);
      expect(plan[0].Extra ?? '').toMatch(/Using index/);
    }
  }

  it("counts an address list's entries from one index", async () => {
    const page = await t.services.iocs.list(t.accountId, ips, null, { first: 5 });
    expect(page.edges).toHaveLength(5);
    const { total, sql, parameters } = await countStatement(() => page.countTotal());
    expect(total).toBe(N);
    await expectIndexOnly(sql, parameters);
  });

  it("counts a domain list's entries from one index", async () => {
    const page = await t.services.iocs.listDomains(t.accountId, names, null, { first: 5 });
    expect(page.edges).toHaveLength(5);
    const { total, sql, parameters } = await countStatement(() => page.countTotal());
    expect(total).toBe(N);
    await expectIndexOnly(sql, parameters);
  });

  it('filters still count what they match', async () => {
    const within = await t.services.iocs.list(t.accountId, ips, { within: '10.0.0.0/24' }, { first: 5 });
    expect(await within.countTotal()).toBe(64);
    const named = await t.services.iocs.listDomains(t.accountId, names, 'host19', { first: 5 });
    expect(await named.countTotal()).toBe(1 + 10 + 100);
  });

  it("another account's lists are empty and count 0, like missing ones", async () => {
    for (const page of [
      await t.services.iocs.list(otherAccount, ips, null, { first: 5 }),
      await t.services.iocs.list(otherAccount, 999_999, null, { first: 5 }),
      await t.services.iocs.listDomains(otherAccount, names, null, { first: 5 }),
      await t.services.iocs.listDomains(otherAccount, 999_999, null, { first: 5 }),
    ]) {
      expect(page.edges).toEqual([]);
      expect(await page.countTotal()).toBe(0);
    }
  });
});
