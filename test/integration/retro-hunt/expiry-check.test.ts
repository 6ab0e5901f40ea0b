import { createTestApp, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';
import { bulkInsert } from '../../../src/db/bulk';
import { cidr4 } from '../../../src/common/net/cidr';
import { IOC_COLUMNS, iocRow } from '../../../src/modules/ioc/ioc.service';
import { IOC_DOMAIN_COLUMNS } from '../../../src/modules/ioc/domain-feed-import';
import { IocCategory, IocEntryKind, IocListKind } from '../../../src/modules/ioc/ioc.enums';
import { EXPIRED_DOMAINS, EXPIRED_ENTRIES } from '../../../src/modules/retro-hunt/retro-hunt.service';

/**
 * The expiry check runs every RETRO_HUNT_INTERVAL_MS (1 s) over every account's entries. Without an index on
 * `expires_at` it read the whole of `ioc` and `ioc_domain` each time: with a 1M-entry list, 2.5 s of SQLite holding
 * the event loop every second (the server barely answered; a bench's matcher warm-up took 4-5 minutes instead of
 * seconds). Here the statements must read the index, and the check must still find exactly what expired.
 */
describe.each(drivers)('retro-hunt expiry check (%s)', (driver) => {
  let t: TestApp;
  const T0 = Date.UTC(2026, 0, 1);
  const KEPT = 3_000;
  const lists: number[] = [];

  beforeAll(async () => {
    t = await createTestApp(driver);
    const list = await t.services.iocLists.create(t.accountId, { name: 'big', kind: IocListKind.BLOCK, severity: 3, category: IocCategory.SCANNER });
    const names = await t.services.iocLists.create(t.accountId, {
      name: 'names',
      kind: IocListKind.BLOCK,
      severity: 3,
      category: IocCategory.PHISHING,
      entryKind: IocEntryKind.DOMAIN,
    });
    if (!list.ok || !names.ok) throw new Error('setup');
    lists.push(list.value.id, names.value.id);
    // Mostly entries without an expiry, some expiring later, and two of each kind whose expiry passes in the window.
    const expiry = (i: number) => (i < KEPT ? null : i < KEPT + 50 ? T0 + 3_600_000 + i : T0 + 1_000 * (i - KEPT - 49));
    const rows = Array.from({ length: KEPT + 52 }, (_, i) => iocRow(t.accountId, list.value.id, cidr4((10 << 24) + i * 4, 30), null, expiry(i), T0 - 10_000));
    const named = Array.from({ length: KEPT + 52 }, (_, i) => [names.value.id, t.accountId, `host${i}.example`, null, expiry(i), T0 - 10_000]);
    await t.dataSource.transaction(async (em) => {
      await bulkInsert(em, 'ioc', IOC_COLUMNS, rows);
      await bulkInsert(em, 'ioc_domain', IOC_DOMAIN_COLUMNS, named);
      await em.query(`UPDATE retro_hunt_clock SET expiry_checked_at = ? WHERE id = 1`, [T0]);
    });
    if (driver === 'mysql') {
      await t.dataSource.query('ANALYZE TABLE ioc');
      await t.dataSource.query('ANALYZE TABLE ioc_domain');
    }
  });

  afterAll(() => t.close());

  it.each([
    ['ioc', EXPIRED_ENTRIES, 'IDX_ioc_expires'],
    ['ioc_domain', EXPIRED_DOMAINS, 'IDX_ioc_domain_expires'],
  ])('reads %s through its expiry index, not the whole table', async (_table, sql, index) => {
    if (driver === 'sqlite') {
      const plan: Array<{ detail: string }> = await t.dataSource.query(`EXPLAIN QUERY PLAN ${sql}`, [T0, T0 + 5_000]);
      const details = plan.map((p) => p.detail).join(' | ');
      expect(details).toContain(`USING INDEX ${index} (expires_at>? AND expires_at<?)`);
    } else {
      const plan: Array<{ key: string | null; type: string }> = await t.dataSource.query(`EXPLAIN ${sql}`, [T0, T0 + 5_000]);
      expect(plan.map((p) => [p.key, p.type])).toEqual([[index, 'range']]);
    }
  });

  it('turns exactly the expiries that passed into a hunt of each list, once', async () => {
    expect(await t.services.retroHunts.checkExpiries(T0 + 5_000)).toBe(2);
    // Requests of one account coalesce into the hunt that waits: one hunt, a cause line per list.
    const hunts: Array<{ cause: string }> = await t.dataSource.query(`SELECT cause FROM retro_hunt ORDER BY id`);
    expect(hunts.flatMap((h) => h.cause.split('\n')).sort()).toEqual(lists.map((l) => `2 entries of list ${l} expired.`).sort());
    expect(await t.services.retroHunts.checkExpiries(T0 + 5_000)).toBe(0);
    // The later expiries are found when their time comes.
    expect(await t.services.retroHunts.checkExpiries(T0 + 3_600_000 + KEPT + 49)).toBe(2);
  });
});
