import { createTestApp, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';
import { failingNth, watchStatements } from '../../helpers/sql-count';
import { turnCounter } from '../../helpers/turns';
import { bulkInsert } from '../../../src/db/bulk';
import { cidr4 } from '../../../src/common/net/cidr';
import { IOC_COLUMNS, iocRow } from '../../../src/modules/ioc/ioc.service';
import { IOC_DOMAIN_COLUMNS } from '../../../src/modules/ioc/domain-feed-import';
import { IocCategory, IocEntryKind, IocListKind } from '../../../src/modules/ioc/ioc.enums';

/**
 * Deleting a list deleted its entries through the list row's ON DELETE CASCADE: one statement, 7 s of SQLite
 * holding the event loop for a 1M-name list (a readiness probe sent meanwhile was reset). The entries now go in
 * chunks with turns of the event loop between them, inside the delete's transaction: still all or nothing.
 */
describe.each(drivers)('deleting a large list (%s)', (driver) => {
  let t: TestApp;
  const N = 45_000;

  beforeAll(async () => {
    t = await createTestApp(driver);
  });
  afterAll(() => t.close());

  async function makeList(kind: IocEntryKind): Promise<number> {
    const list = await t.services.iocLists.create(t.accountId, {
      name: `big ${kind} ${Math.random()}`,
      kind: IocListKind.BLOCK,
      severity: 3,
      category: IocCategory.SCANNER,
      entryKind: kind,
    });
    if (!list.ok) throw new Error('setup');
    const id = list.value.id;
    const now = Date.now();
    await t.dataSource.transaction(async (em) => {
      if (kind === IocEntryKind.IP)
        await bulkInsert(
          em,
          'ioc',
          IOC_COLUMNS,
          Array.from({ length: N }, (_, i) => iocRow(t.accountId, id, cidr4((10 << 24) + i * 4, 30), null, null, now)),
        );
      else
        await bulkInsert(
          em,
          'ioc_domain',
          IOC_DOMAIN_COLUMNS,
          Array.from({ length: N }, (_, i) => [id, t.accountId, `host${i}.example`, null, null, now]),
        );
    });
    return id;
  }

  const rows = async (listId: number) => {
    const [a] = await t.dataSource.query(`SELECT COUNT(*) AS n FROM ioc WHERE list_id = ?`, [listId]);
    const [b] = await t.dataSource.query(`SELECT COUNT(*) AS n FROM ioc_domain WHERE list_id = ?`, [listId]);
    return Number(a.n) + Number(b.n);
  };

  it.each([IocEntryKind.IP, IocEntryKind.DOMAIN])('deletes a %s list in chunks, giving the event loop turns between them', async (kind) => {
    const id = await makeList(kind);
    const deletes: string[] = [];
    const turns = turnCounter();
    const seen: number[] = [];
    try {
      await watchStatements(
        t.dataSource,
        async () => {
          const r = await t.services.iocLists.delete(t.accountId, id);
          expect(r.ok).toBe(true);
        },
        (sql) => {
          if (/^\s*DELETE FROM/i.test(sql) && /(ioc|ioc_domain)\b/.test(sql)) {
            deletes.push(sql);
            seen.push(turns.now);
          }
        },
      );
    } finally {
      turns.stop();
    }
    const table = kind === IocEntryKind.IP ? 'ioc' : 'ioc_domain';
    expect(deletes.filter((d) => new RegExp(`DELETE FROM ${table} `).test(d)).length).toBeGreaterThanOrEqual(3);
    expect(new Set(seen).size).toBeGreaterThanOrEqual(3);
    expect(await rows(id)).toBe(0);
    expect(await t.dataSource.query(`SELECT id FROM ioc_list WHERE id = ?`, [id])).toEqual([]);
  });

  it('deletes nothing when a chunk fails: the list and all its entries stay', async () => {
    const id = await makeList(IocEntryKind.IP);
    const chunks = await failingNth(t.dataSource, /^DELETE FROM ioc WHERE list_id = \? AND id > \? AND id <= \?/, 2, () =>
      expect(t.services.iocLists.delete(t.accountId, id)).rejects.toThrow(/injected/),
    );
    expect(chunks).toBe(2);
    expect(await rows(id)).toBe(N);
    expect(await t.dataSource.query(`SELECT id FROM ioc_list WHERE id = ?`, [id])).toHaveLength(1);
  });
});
