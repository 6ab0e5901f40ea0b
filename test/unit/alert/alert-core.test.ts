import { AddressGuard } from '../../../src/modules/alert/destinations/address-guard';
import { retryDelay } from '../../../src/modules/alert/alert.dispatcher';
import { AlertHit, dnsAlertHit, draftAlerts, flowAlertHit, OutboxRule, ruleMatches } from '../../../src/modules/alert/alert-outbox';
import { HitFoundBy, HitKind } from '../../../src/modules/alert/alert.enums';
import type { NewDnsHit } from '../../../src/modules/dns-hit/dns-hit.columns';
import { alertCef, sampleMessage } from '../../../src/modules/alert/alert-message';
import { lastDigestDue } from '../../../src/modules/alert/digest-schedule';
import type { NewHit } from '../../../src/modules/flow-hit/flow-hit.columns';

const rule = (over: Partial<OutboxRule> = {}): OutboxRule => ({
  id: 1,
  minSeverity: 0,
  directions: [],
  deviceIds: [],
  iocListIds: [],
  categories: [],
  foundBy: [],
  hitKinds: [],
  throttleMinutes: 60,
  destinationIds: [1],
  immediate: true,
  ...over,
});

const hit = (over: Partial<NewHit> = {}): AlertHit =>
  flowAlertHit({
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
  } as NewHit);

const dnsHit = (over: Partial<Record<keyof NewDnsHit, string | number>> = {}): AlertHit =>
  dnsAlertHit(
    {
      accountId: 1,
      deviceId: 1,
      uploadId: 1,
      firstSeenAt: 1000,
      lastSeenAt: 2000,
      direction: 'OUTBOUND',
      internalIp: '10.0.0.1',
      qname: 'bad.example',
      qtype: 'A',
      hitCount: 3,
      answers: '[]',
      iocDomainId: 10,
      iocListId: 5,
      matchedName: 'bad.example',
      severity: 4,
      category: 'MALWARE',
      ...over,
    },
    HitFoundBy.UPLOAD,
  );

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
    [{ hitKinds: ['DNS'] }, {}, false],
    [{ hitKinds: ['IP'] }, {}, true],
    [{ hitKinds: ['IP', 'DNS'] }, {}, true],
  ] as Array<[Partial<OutboxRule>, Record<string, unknown>, boolean]>)('%j on %j: %s', (r, h, expected) => {
    expect(ruleMatches(rule(r), hit(h as Partial<NewHit>))).toBe(expected);
  });

  it('groups hits by (rule, entry, internal host) with their count and capture span, in a window starting now', () => {
    const hits = [hit(), hit({ firstSeenAt: 500, lastSeenAt: 900 }), hit({ internalKey: 'k2' }), hit({ iocId: 11 })];
    const drafts = draftAlerts([rule(), rule({ id: 2, throttleMinutes: 1, minSeverity: 5 })], hits, 7_200_123);
    expect(drafts.map((d) => [d.ruleId, d.iocId, d.internalKey, d.hitCount, d.firstSeenAt, d.lastSeenAt, d.windowStart])).toEqual([
      [1, 10, 'k1', 2, 500, 2000, 7_200_123],
      [1, 10, 'k2', 1, 1000, 2000, 7_200_123],
      [1, 11, 'k1', 1, 1000, 2000, 7_200_123],
    ]);
  });

  it('matches DNS hits on hit kind, and keys them apart from flow hits of the same entry id and host', () => {
    expect(ruleMatches(rule({ hitKinds: [HitKind.DNS] }), dnsHit())).toBe(true);
    expect(ruleMatches(rule({ hitKinds: [HitKind.IP] }), dnsHit())).toBe(false);
    const ip = dnsHit().internalKey;
    const hits = [hit({ internalKey: ip }), dnsHit(), dnsHit({ qname: 'x.bad.example' }), dnsHit({ internalIp: '10.0.0.2' })];
    const drafts = draftAlerts([rule()], hits, 7_200_123);
    expect(drafts.map((d) => [d.kind, d.iocId, d.first.internalIp, d.hitCount])).toEqual([
      ['DNS', 10, '10.0.0.1', 2],
      ['DNS', 10, '10.0.0.2', 1],
      ['IP', 10, '10.0.0.1', 1],
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

describe('digest schedule', () => {
  const daily = (time: string, timeZone: string) => ({ weekly: false, time, timeZone, weekday: null });
  it.each([
    // Before today's 08:00 in Paris: yesterday's (CET, UTC+1).
    [daily('08:00', 'Europe/Paris'), '2026-03-29T05:00:00Z', '2026-03-28T07:00:00.000Z'],
    // After it, the day summer time starts: 08:00 CEST is 06:00 UTC.
    [daily('08:00', 'Europe/Paris'), '2026-03-29T06:30:00Z', '2026-03-29T06:00:00.000Z'],
    // Exactly at the time: due now.
    [daily('08:00', 'Europe/Paris'), '2026-03-29T06:00:00Z', '2026-03-29T06:00:00.000Z'],
    // 02:30 does not exist in New York on 8 March 2026: it moves forward with the clock, to 03:30 EDT.
    [daily('02:30', 'America/New_York'), '2026-03-08T12:00:00Z', '2026-03-08T07:30:00.000Z'],
    // Weekly on Monday 09:30 New York, asked on a Friday: the Monday before.
    [{ weekly: true, time: '09:30', timeZone: 'America/New_York', weekday: 1 }, '2026-12-04T20:00:00Z', '2026-11-30T14:30:00.000Z'],
    // Weekly on Friday 23:00 Tokyo, asked on that Friday 22:00 Tokyo: a week before.
    [{ weekly: true, time: '23:00', timeZone: 'Asia/Tokyo', weekday: 5 }, '2026-12-04T13:00:00Z', '2026-11-27T14:00:00.000Z'],
  ])('%j at %s: %s', (schedule, now, expected) => {
    expect(new Date(lastDigestDue(schedule, Date.parse(now))).toISOString()).toBe(expected);
  });
});
