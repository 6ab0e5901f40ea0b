import { createTestApp, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';
import { bulkInsert } from '../../../src/db/bulk';
import { cidr4, parseCidr, Cidr } from '../../../src/common/net/cidr';
import { parseIp } from '../../../src/common/net/ip';
import { containingEntries, IOC_COLUMNS, iocRow } from '../../../src/modules/ioc/ioc.service';
import { IocCategory, IocListKind } from '../../../src/modules/ioc/ioc.enums';
import { IocList } from '../../../src/modules/ioc/ioc-list.entity';

const net = (text: string): Cidr => {
  const parsed = parseCidr(text, { minPrefixV4: 0, minPrefixV6: 0 });
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.cidr;
};

/**
 * iocLookup's account-wide search reads each of the account's lists through the `(list_id, range_start)` index
 * (`ioc` has no account-wide index since migration IocAccountIndex1764760000000: feed imports no longer keep one
 * up to date). It must still find every containing entry of every list of the account, and none of another's.
 */
describe.each(drivers)('iocLookup over the lists of an account (%s)', (driver) => {
  let t: TestApp;
  const lists: number[] = [];
  let foreignList = 0;
  const N = 2_000;

  beforeAll(async () => {
    t = await createTestApp(driver);
    const create = async (account: number, name: string) => {
      const list = await t.services.iocLists.create(account, { name, kind: IocListKind.BLOCK, severity: 3, category: IocCategory.SCANNER });
      if (!list.ok) throw new Error('setup');
      return list.value.id;
    };
    for (const name of ['a', 'b', 'c']) lists.push(await create(t.accountId, name));
    foreignList = await create(t.otherAccountId, 'theirs');
    const now = Date.UTC(2026, 0, 1);
    const rows = [
      // List a: N /30s from 10.0.0.0; list b: the /8 and a /32 elsewhere; list c: the /16; the other account: the /24.
      ...Array.from({ length: N }, (_, i) => iocRow(t.accountId, lists[0], cidr4((10 << 24) + i * 4, 30), null, null, now)),
      iocRow(t.accountId, lists[1], net('10.0.0.0/8'), null, null, now),
      iocRow(t.accountId, lists[1], net('192.0.2.1/32'), null, null, now),
      iocRow(t.accountId, lists[2], net('10.0.0.0/16'), null, null, now),
      ...Array.from({ length: N }, (_, i) => iocRow(t.otherAccountId, foreignList, cidr4((10 << 24) + i * 256, 24), null, null, now)),
    ];
    await t.dataSource.transaction((em) => bulkInsert(em, 'ioc', IOC_COLUMNS, rows));
    if (driver === 'mysql') await t.dataSource.query('ANALYZE TABLE ioc');
  });

  afterAll(() => t.close());

  it("reads the lists' (list_id, range_start) index, not the table", async () => {
    const [sql, params] = containingEntries(t.dataSource, t.accountId, lists, parseIp('10.0.1.5')!).getQueryAndParameters();
    if (driver === 'sqlite') {
      const plan: Array<{ detail: string }> = await t.dataSource.query(`EXPLAIN QUERY PLAN ${sql}`, params);
      expect(plan.map((p) => p.detail).join(' | ')).toMatch(/SEARCH i USING INDEX IDX_ioc_list_start \(list_id=\? AND range_start>\? AND range_start<\?\)/);
    } else {
      const plan: Array<{ key: string | null; type: string }> = await t.dataSource.query(`EXPLAIN ${sql}`, params);
      expect(plan.map((p) => [p.key, p.type])).toEqual([['IDX_ioc_list_start', 'range']]);
    }
  });

  it('a list deleted between the read of the lists and of their entries is left out, not an error', async () => {
    const gone = await t.services.iocLists.create(t.accountId, { name: 'gone', kind: IocListKind.BLOCK, severity: 1, category: IocCategory.OTHER });
    if (!gone.ok) throw new Error('setup');
    await t.services.iocs.add(t.accountId, gone.value.id, [{ value: '10.0.1.5' }]);
    const repo = t.dataSource.getRepository(IocList);
    const find = repo.find.bind(repo);
    const spy = jest.spyOn(repo, 'find').mockImplementationOnce(async (options) => {
      const lists = await find(options);
      expect(lists.map((l) => l.id)).toContain(gone.value.id);
      expect((await t.services.iocLists.delete(t.accountId, gone.value.id)).ok).toBe(true);
      return lists;
    });
    try {
      const found = await t.services.iocs.lookup(t.accountId, '10.0.1.5');
      expect(spy).toHaveBeenCalled();
      expect(found.matches.map((m) => m.ioc.cidr)).toEqual(['10.0.1.4/30', '10.0.0.0/16', '10.0.0.0/8']);
    } finally {
      spy.mockRestore();
    }
  });

  it.each([
    ['10.0.1.5', ['10.0.1.4/30', '10.0.0.0/16', '10.0.0.0/8']],
    ['10.0.200.1', ['10.0.0.0/16', '10.0.0.0/8']],
    ['10.9.0.1', ['10.0.0.0/8']],
    ['192.0.2.1', ['192.0.2.1/32']],
    ['198.51.100.1', []],
  ])('%s: every containing entry of every list of the account, longest prefix first, none of another account', async (address, expected) => {
    const found = await t.services.iocs.lookup(t.accountId, address);
    expect(found.matches.map((m) => m.ioc.cidr)).toEqual(expected);
    expect(found.matches.every((m) => m.ioc.accountId === t.accountId && lists.includes(m.iocList.id))).toBe(true);
    // The other account sees only its own /24s.
    const theirs = await t.services.iocs.lookup(t.otherAccountId, address);
    expect(theirs.matches.map((m) => m.iocList.id)).toEqual(address.startsWith('10.0.') ? [foreignList] : []);
  });
});
