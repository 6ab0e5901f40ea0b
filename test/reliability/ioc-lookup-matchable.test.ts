import { drivers } from '../helpers/db';
import { createTestApp, ok, TestApp } from '../helpers/app';
import { IpType } from '../../src/modules/device/device.enums';
import { AddressScope, addressScopeOf, IocCategory, IocListKind } from '../../src/modules/ioc/ioc.enums';
import { IP_SCOPES } from '../../src/common/net/ip';

const LOOKUP = `query($a: String!) { iocLookup(address: $a) { address scope addressScope matchable notMatchableReason
  matches { ioc { cidr } iocList { name } } policies { verdict policy { name } } } }`;

describe.each(drivers)('iocLookup of addresses uploads never match (%s)', (driver) => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp(driver);
    const s = t.services;
    const policy = await s.policies.create(t.accountId, { name: 'Edge' });
    // A bogon list: it holds private space, which the matcher never looks up.
    const list = await s.iocLists.create(t.accountId, { name: 'Bogons', kind: IocListKind.BLOCK, severity: 2, category: IocCategory.OTHER });
    if (!policy.ok || !list.ok) throw new Error('seed');
    expect((await s.iocs.add(t.accountId, list.value.id, [{ value: '10.0.0.0/8' }, { value: '198.18.0.0/15' }, { value: '100.64.0.0/10' }])).ok).toBe(true);
    expect((await s.policies.attachIocLists(t.accountId, policy.value.id, [list.value.id])).ok).toBe(true);
    expect((await s.devices.create(t.accountId, { nickname: 'gw', ipType: IpType.STATIC, ipAddress: '93.184.216.34', policyId: policy.value.id })).ok).toBe(
      true,
    );
  });
  afterAll(() => t.close());

  it('never says BLOCKED for an address it marks not matchable, says why, and still lists the containing entries', async () => {
    for (const [address, scope] of [
      ['10.1.2.3', /private \(RFC 1918\)/],
      ['100.64.1.1', /./],
    ] as const) {
      const l = ok(await t.gql(LOOKUP, { a: address })).iocLookup;
      expect(l.matchable).toBe(false);
      expect(l.notMatchableReason).toMatch(scope);
      expect(l.notMatchableReason).toMatch(/never|no list entry makes it a hit/);
      expect(l.matches.map((m: any) => m.iocList.name)).toEqual(['Bogons']);
      expect(l.policies).toEqual([{ verdict: 'NOT_MATCHABLE', policy: { name: 'Edge' } }]);
    }
    // A matchable address in the same list is BLOCKED as before.
    const pub = ok(await t.gql(LOOKUP, { a: '198.18.0.1' })).iocLookup;
    expect(pub).toMatchObject({ matchable: true, notMatchableReason: null, policies: [{ verdict: 'BLOCKED' }] });
  });

  it('names the address scope as an enum beside the words, for every scope common/net knows', async () => {
    for (const [address, addressScope, words] of [
      ['8.8.8.8', 'PUBLIC', 'a public address'],
      ['10.1.2.3', 'PRIVATE', 'a private (RFC 1918) address'],
      ['fd00::1', 'UNIQUE_LOCAL', /unique-local/],
      ['ff02::1:ff00:11', 'MULTICAST', 'a multicast address'],
      ['169.254.1.1', 'LINK_LOCAL', 'a link-local address'],
      ['100.64.1.1', 'CARRIER_GRADE_NAT', /carrier-grade NAT/],
      ['198.18.0.1', 'BENCHMARKING', 'a benchmarking address'],
      ['255.255.255.255', 'BROADCAST', /broadcast/],
      ['64:ff9b::1.2.3.4', 'NAT64', /NAT64/],
      ['::ffff:192.168.1.1', 'PRIVATE', /RFC 1918/],
    ] as const) {
      const l = ok(await t.gql(LOOKUP, { a: address })).iocLookup;
      expect([address, l.addressScope]).toEqual([address, addressScope]);
      expect(l.scope).toMatch(words);
    }
    // One enum value per scope, and no value without a scope (but DOMAIN: iocLookup of a domain name, #18).
    expect(IP_SCOPES.map(addressScopeOf).sort()).toEqual(
      Object.values(AddressScope)
        .filter((v) => v !== AddressScope.DOMAIN)
        .sort(),
    );
  });
});
