import { AddressGuard } from '../../../src/modules/alert/destinations/address-guard';
import { retryDelay } from '../../../src/modules/alert/alert.dispatcher';
import { draftAlerts, OutboxRule, ruleMatches } from '../../../src/modules/alert/alert-outbox';
import { alertCef, sampleMessage } from '../../../src/modules/alert/alert-message';
import type { NewHit } from '../../../src/modules/flow-hit/flow-hit.columns';

const rule = (over: Partial<OutboxRule> = {}): OutboxRule => ({
  id: 1,
  minSeverity: 0,
  directions: [],
  deviceIds: [],
  iocListIds: [],
  categories: [],
  foundBy: [],
  throttleMinutes: 60,
  destinationIds: [1],
  ...over,
});

const hit = (over: Partial<NewHit> = {}): NewHit =>
  ({
    accountId: 1,
    deviceId: 1,
    uploadId: 1,
    iocId: 10,
    iocListId: 5,
    internalKey: 'k1',
    internalIp: '10.0.0.1',
    externalIp: '198.51.100.7',
    direction: 'OUTBOUND',
    severity: 4,
    category: 'MALWARE',
    firstSeenAt: 1000,
    lastSeenAt: 2000,
    ...over,
  }) as NewHit;

describe('alert rule matching', () => {
  it.each([
    [{ minSeverity: 5 }, {}, false],
    [{ minSeverity: 4 }, {}, true],
    [{ directions: ['INBOUND'] }, {}, false],
    [{ directions: ['INBOUND', 'OUTBOUND'] }, {}, true],
    [{ deviceIds: [2] }, {}, false],
    [{ iocListIds: [5] }, {}, true],
    [{ categories: ['C2_BOTNET'] }, {}, false],
    [{ foundBy: ['RETRO_HUNT'] }, {}, false],
    [{ foundBy: ['RETRO_HUNT'] }, { foundBy: 'RETRO_HUNT' }, true],
    [{ foundBy: ['UPLOAD'] }, {}, true],
  ] as Array<[Partial<OutboxRule>, Record<string, unknown>, boolean]>)('%j on %j: %s', (r, h, expected) => {
    expect(ruleMatches(rule(r), hit(h as Partial<NewHit>))).toBe(expected);
  });

  it('groups hits by (rule, entry, internal host) with their count and capture span, in one window', () => {
    const hits = [hit(), hit({ firstSeenAt: 500, lastSeenAt: 900 }), hit({ internalKey: 'k2' }), hit({ iocId: 11 })];
    const drafts = draftAlerts([rule(), rule({ id: 2, throttleMinutes: 1, minSeverity: 5 })], hits, 7_200_123);
    expect(drafts.map((d) => [d.ruleId, d.iocId, d.internalKey, d.hitCount, d.firstSeenAt, d.lastSeenAt, d.windowStart])).toEqual([
      [1, 10, 'k1', 2, 500, 2000, 7_200_000],
      [1, 10, 'k2', 1, 1000, 2000, 7_200_000],
      [1, 11, 'k1', 1, 1000, 2000, 7_200_000],
    ]);
  });
});

describe('retry delay', () => {
  it('doubles from the base, capped at an hour, jittered between half and all of it', () => {
    expect([1, 2, 3, 4].map((n) => retryDelay(n, 1000, () => 1))).toEqual([1000, 2000, 4000, 8000]);
    expect([1, 2, 3, 4].map((n) => retryDelay(n, 1000, () => 0))).toEqual([500, 1000, 2000, 4000]);
    expect(retryDelay(40, 1000, () => 1)).toBe(3_600_000);
  });
});

describe('address guard', () => {
  const guard = new AddressGuard(
    [],
    async (host) => ({ 'meta.example': ['169.254.169.254'], 'ok.example': ['203.0.113.5'], 'mixed.example': ['203.0.113.5', '127.0.0.1'] })[host] ?? [],
  );

  it.each([
    ['169.254.169.254', /linkLocal/],
    ['fe80::1', /linkLocal/],
    ['127.0.0.1', /loopback/],
    ['::1', /loopback/],
    ['0.0.0.0', /unspecified/],
    ['100.100.100.200', /metadata/],
    ['fd00:ec2::254', /metadata/],
    ['::ffff:169.254.169.254', /linkLocal/],
    ['10.0.0.5', null],
    ['203.0.113.5', null],
  ])('%s', (address, why) => {
    const problem = guard.problem(address);
    if (why === null) expect(problem).toBeNull();
    else expect(problem).toMatch(why);
  });

  it('checks every address a name resolves to, and connects to the one checked', async () => {
    await expect(guard.address('ok.example')).resolves.toBe('203.0.113.5');
    await expect(guard.address('meta.example')).rejects.toThrow(/refused/);
    await expect(guard.address('mixed.example')).rejects.toThrow(/loopback/);
    await expect(guard.address('none.example')).rejects.toThrow(/does not resolve/);
    await expect(new AddressGuard(['127.0.0.0/8']).address('127.0.0.1')).resolves.toBe('127.0.0.1');
  });
});

describe('CEF', () => {
  it('escapes pipes in the header and equals signs in extension values', () => {
    const m = { ...sampleMessage('1', new Date(0)), rule: { id: 'r', name: 'a=b|c' }, ioc: { id: 'i', cidr: '1.2.3.4/32' } };
    const cef = alertCef(m);
    expect(cef).toContain('cs3=a\\=b|c');
    expect(cef.split('|').slice(0, 7)).toEqual(['CEF:0', 'pcap-defense', 'pcap-defense', '1', 'ioc-hit-5', 'IOC hit: 1.2.3.4/32', '10']);
  });
});
