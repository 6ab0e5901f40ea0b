import { drivers } from '../../helpers/db';
import { createTestApp, TestApp } from '../../helpers/app';
import { findByIds } from '../../../src/db/find-by-ids';
import { Device } from '../../../src/modules/device/device.entity';
import { IpType } from '../../../src/modules/device/device.enums';
import { Ioc } from '../../../src/modules/ioc/ioc.entity';
import { IocList } from '../../../src/modules/ioc/ioc-list.entity';
import { IocCategory, IocListKind } from '../../../src/modules/ioc/ioc.enums';

/**
 * The DataLoaders' plain-SQL lookup (src/db/find-by-ids.ts) hydrates exactly what TypeORM's find does: every
 * column, every driver conversion and transformer (epoch-ms dates, BIGINT strings on MySQL, booleans, JSON,
 * binary range bounds, nulls), in the order asked, with another account's IDs and missing ones as null.
 */
describe.each(drivers)('findByIds (%s)', (driver) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(driver);
  });
  afterAll(() => t.close());

  const value = <T>(r: { ok: boolean; value?: T }): T => {
    if (!r.ok) throw new Error(JSON.stringify(r));
    return r.value as T;
  };

  it('equals the repository find for devices, lists and entries, in the order asked, foreign and missing IDs null', async () => {
    const { accountId, otherAccountId, services } = t;
    const policy = value(await services.policies.create(accountId, { name: 'p' }));
    const foreignPolicy = value(await services.policies.create(otherAccountId, { name: 'p' }));
    const devices = [
      value(
        await services.devices.create(accountId, {
          nickname: 'static',
          ipType: IpType.STATIC,
          ipAddress: '8.8.4.4',
          policyId: policy.id,
          note: 'rack 3',
          internalNetworks: ['100.64.0.0/16', '2001:db8:1::/48'],
          identifyByUploaderIp: true,
        }),
      ),
      value(await services.devices.create(accountId, { nickname: 'plain', ipType: IpType.STATIC, ipAddress: '8.8.8.8', policyId: policy.id })),
    ];
    const foreignDevice = value(
      await services.devices.create(otherAccountId, { nickname: 'theirs', ipType: IpType.STATIC, ipAddress: '8.8.8.8', policyId: foreignPolicy.id }),
    );
    const lists = [
      value(await services.iocLists.create(accountId, { name: 'block', kind: IocListKind.BLOCK, severity: 4, category: IocCategory.MALWARE })),
      value(await services.iocLists.create(accountId, { name: 'allow', kind: IocListKind.ALLOW, severity: 0, category: IocCategory.OTHER })),
    ];
    const foreignList = value(await services.iocLists.create(otherAccountId, { name: 'b', kind: IocListKind.BLOCK, severity: 1, category: IocCategory.OTHER }));
    await services.iocs.add(accountId, lists[0].id, [
      { value: '203.0.113.0/24', comment: 'a comment' },
      { value: '2001:db8:bad::/48', expiresAt: new Date(Date.UTC(2030, 0, 1, 12, 30, 45, 123)) },
      { value: '198.51.100.7' },
    ]);
    await services.iocs.add(otherAccountId, foreignList.id, [{ value: '192.0.2.1' }]);

    for (const target of [Device, IocList, Ioc]) {
      const repo = t.dataSource.getRepository<{ id: number; accountId: number }>(target);
      const ours = await repo.findBy({ accountId });
      const theirs = await repo.findBy({ accountId: otherAccountId });
      expect(ours.length).toBeGreaterThanOrEqual(2);
      expect(theirs.length).toBeGreaterThanOrEqual(1);
      const missing = Math.max(...ours.map((r) => r.id), ...theirs.map((r) => r.id)) + 100;
      // Reversed, with a repeat, a foreign ID and a missing one.
      const ids = [...ours.map((r) => r.id).reverse(), ours[0].id, theirs[0].id, missing];
      const found = await findByIds(t.dataSource, target, accountId, ids);
      expect(found).toStrictEqual([...[...ours].reverse(), ours[0], null, null]);
    }
    // Values that only a driver conversion or a transformer gets right, checked by value as well.
    const [device] = await findByIds(t.dataSource, Device, accountId, [devices[0].id]);
    expect(device).toMatchObject({ nickname: 'static', identifyByUploaderIp: true, internalNetworks: ['100.64.0.0/16', '2001:db8:1::/48'] });
    expect(device!.createdAt).toBeInstanceOf(Date);
    const stored = await t.dataSource.getRepository(Ioc).findBy({ accountId, listId: lists[0].id });
    const entries = await findByIds(
      t.dataSource,
      Ioc,
      accountId,
      stored.map((e) => e.id),
    );
    expect(entries.find((e) => e!.cidr === '2001:db8:bad::/48')!.expiresAt).toEqual(new Date(Date.UTC(2030, 0, 1, 12, 30, 45, 123)));
    expect(entries.find((e) => e!.cidr === '203.0.113.0/24')!.comment).toBe('a comment');
    expect(await findByIds(t.dataSource, Device, accountId, [foreignDevice.id])).toEqual([null]);
    expect(await findByIds(t.dataSource, Device, accountId, [])).toEqual([]);
  });

  it('asks in chunks past a thousand IDs', async () => {
    const { accountId, services } = t;
    const list = value(await services.iocLists.create(accountId, { name: 'many', kind: IocListKind.BLOCK, severity: 2, category: IocCategory.OTHER }));
    for (let part = 0; part < 3; part++) {
      value(
        await services.iocs.add(
          accountId,
          list.id,
          Array.from({ length: 500 }, (_, i) => ({ value: `45.${part}.${Math.floor(i / 250)}.${i % 250}` })),
        ),
      );
    }
    const all = await t.dataSource.getRepository(Ioc).findBy({ accountId, listId: list.id });
    expect(all).toHaveLength(1_500);
    const found = await findByIds(
      t.dataSource,
      Ioc,
      accountId,
      all.map((e) => e.id),
    );
    expect(found).toStrictEqual(all);
  });
});
