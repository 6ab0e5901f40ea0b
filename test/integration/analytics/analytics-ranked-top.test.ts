import type { ClickHouseClient } from '@clickhouse/client';
import { AnalyticsHits, CommittedAttempt } from '../../../src/modules/analytics/analytics-hits';
import { migrateAnalytics } from '../../../src/modules/analytics/analytics-schema';
import { DAY_MS } from '../../../src/modules/analytics/analytics-rollup';
import { NewHit } from '../../../src/modules/flow-hit/flow-hit.columns';
import { ResolvedHitFilter } from '../../../src/modules/flow-hit/hit-filter';
import { ipKey } from '../../../src/modules/ioc/ioc-range';
import { parseIp } from '../../../src/common/net/ip';
import { ClickHouseExecutor } from '../../../src/modules/report/groupings/clickhouse.executor';
import { BY_INTERNAL_HOST, BY_IOC } from '../../../src/modules/report/groupings/groupings';
import { Grouping } from '../../../src/modules/report/groupings/grouping';
import { chdbConfig, closeChdb, describeChdb, openAnalyticsClient } from './chdb';

/**
 * A top N whose distinct counts are costly (byIoc, byInternalHost) is ranked first by a coarser number, the entry
 * or the host as host_ip, and computed over the N first coarse groups only (clickhouse.executor.ts rankedTop). Each
 * account below holds one case. The answer is always the one a single statement over every hit gives; where a group
 * outside the candidates could still rank among the N first (an entry's hits split across severities, a tie at the
 * cut, IPv6 hosts sharing host_ip 0), the grouping is read whole instead.
 */
const START = Date.UTC(2024, 4, 1);

interface Spec {
  entry: number;
  host: string;
  severity?: number;
  category?: string;
  count: number;
}

/** `count` hits of each spec for `accountId`, each from its own external address. */
function hits(accountId: number, uploadId: number, specs: readonly Spec[]): NewHit[] {
  let n = 0;
  return specs.flatMap((s) =>
    Array.from({ length: s.count }, () => {
      const at = START + n * 60_000;
      const external = `198.51.100.${n++ % 250}`;
      return {
        accountId,
        firstSeenAt: at,
        lastSeenAt: at + 1_000,
        deviceId: accountId,
        uploadId,
        direction: 'OUTBOUND',
        protocol: 'TCP',
        internalIp: s.host,
        internalKey: ipKey(parseIp(s.host)!),
        internalPort: 40000,
        externalIp: external,
        externalKey: ipKey(parseIp(external)!),
        externalPort: 443,
        destinationPort: 443,
        matchedSide: 'EXTERNAL',
        matchedIp: '198.51.100.0',
        matchedCidr: '198.51.100.0/24',
        iocId: s.entry,
        iocListId: 1,
        severity: s.severity ?? 5,
        category: s.category ?? 'C2_BOTNET',
        packetsForward: 1,
        packetsReverse: 1,
        bytesForward: 100,
        bytesReverse: 100,
        foundBy: 'UPLOAD',
        foundAt: at,
        retroHuntId: null,
      } as NewHit;
    }),
  );
}

/** The triage view's cases: its first `first` pairs (host, entry, category) of severity 5, and how many statements. */
const THREAT_CASES: Array<
  [name: string, first: number, specs: Spec[], expected: Array<[host: string, entry: number, category: string, hits: number]>, statements: number]
> = [
  [
    'pairs ranked apart: two statements',
    2,
    [
      { entry: 1, host: '10.0.0.1', count: 6 },
      { entry: 2, host: '10.0.0.1', count: 2 },
      { entry: 1, host: '10.0.0.2', count: 5 },
      { entry: 1, host: '10.0.0.3', count: 4 },
    ],
    [
      ['10.0.0.1', 1, 'C2_BOTNET', 6],
      ['10.0.0.2', 1, 'C2_BOTNET', 5],
    ],
    2,
  ],
  [
    // One (host, entry) has 8 hits under two categories (4 and 4): the pair with 5 comes first.
    'a host and entry split across categories: ranked exactly',
    1,
    [
      { entry: 1, host: '10.0.0.1', category: 'C2_BOTNET', count: 4 },
      { entry: 1, host: '10.0.0.1', category: 'MALWARE', count: 4 },
      { entry: 2, host: '10.0.0.2', count: 5 },
    ],
    [['10.0.0.2', 2, 'C2_BOTNET', 5]],
    4,
  ],
  [
    'IPv6 hosts sharing host_ip 0: ranked exactly',
    1,
    [
      { entry: 1, host: 'fd00::1', count: 3 },
      { entry: 1, host: 'fd00::2', count: 3 },
      { entry: 1, host: '10.0.0.1', count: 4 },
    ],
    [['10.0.0.1', 1, 'C2_BOTNET', 4]],
    4,
  ],
  [
    // Tied on hits, pairs order by device, then host by bytes ('10.0.0.10' before '10.0.0.9').
    'a tie at the cut: ranked exactly',
    1,
    [
      { entry: 1, host: '10.0.0.9', count: 3 },
      { entry: 1, host: '10.0.0.10', count: 3 },
    ],
    [['10.0.0.10', 1, 'C2_BOTNET', 3]],
    4,
  ],
];

const CASES: Array<[name: string, grouping: Grouping<unknown>, first: number, specs: Spec[], expected: Array<Record<string, unknown>>, statements: number]> = [
  [
    'entries ranked apart: two statements',
    BY_IOC as Grouping<unknown>,
    2,
    [
      { entry: 1, host: '10.0.0.1', count: 5 },
      { entry: 1, host: '10.0.0.2', count: 4 },
      { entry: 2, host: '10.0.0.1', count: 7 },
      { entry: 3, host: '10.0.0.3', count: 5 },
      { entry: 4, host: '10.0.0.3', count: 3 },
    ],
    [
      { iocId: 1, hits: 9, internalHosts: 2 },
      { iocId: 2, hits: 7, internalHosts: 1 },
    ],
    2,
  ],
  [
    'fewer entries than asked for: two statements',
    BY_IOC as Grouping<unknown>,
    10,
    [
      { entry: 1, host: '10.0.0.1', count: 2 },
      { entry: 2, host: '10.0.0.2', count: 2 },
    ],
    [
      { iocId: 1, hits: 2, internalHosts: 1 },
      { iocId: 2, hits: 2, internalHosts: 1 },
    ],
    2,
  ],
  [
    // The entry with the most hits has them at two severities (its list changed): 5 and 5 against another's 6.
    'an entry split across severities: read whole',
    BY_IOC as Grouping<unknown>,
    1,
    [
      { entry: 10, host: '10.0.0.1', severity: 5, count: 5 },
      { entry: 10, host: '10.0.0.1', severity: 3, count: 5 },
      { entry: 11, host: '10.0.0.2', count: 6 },
    ],
    [{ iocId: 11, hits: 6, internalHosts: 1 }],
    3,
  ],
  [
    // Ties break on the entry's ID, which the coarse ranking does not promise to follow.
    'a tie at the cut: read whole',
    BY_IOC as Grouping<unknown>,
    1,
    [
      { entry: 21, host: '10.0.0.1', count: 4 },
      { entry: 20, host: '10.0.0.2', count: 4 },
    ],
    [{ iocId: 20, hits: 4, internalHosts: 1 }],
    3,
  ],
  [
    'hosts ranked apart: two statements',
    BY_INTERNAL_HOST as Grouping<unknown>,
    1,
    [
      { entry: 1, host: '10.0.0.9', count: 3 },
      { entry: 2, host: '10.0.0.9', count: 3 },
      { entry: 1, host: '10.0.0.10', count: 4 },
    ],
    [{ internalIp: '10.0.0.9', hits: 6, iocs: 2 }],
    2,
  ],
  [
    // Both IPv6 hosts count under host_ip 0 (8 hits), ahead of the IPv4 host's 6; each has 4.
    'IPv6 hosts sharing host_ip 0: read whole',
    BY_INTERNAL_HOST as Grouping<unknown>,
    1,
    [
      { entry: 1, host: 'fd00::1', count: 4 },
      { entry: 1, host: 'fd00::2', count: 4 },
      { entry: 2, host: '10.0.0.1', count: 6 },
    ],
    [{ internalIp: '10.0.0.1', hits: 6, iocs: 1 }],
    3,
  ],
  [
    'an IPv6 host first: two statements',
    BY_INTERNAL_HOST as Grouping<unknown>,
    1,
    [
      { entry: 1, host: 'fd00::1', count: 9 },
      { entry: 2, host: '10.0.0.1', count: 3 },
    ],
    [{ internalIp: 'fd00::1', hits: 9, iocs: 1 }],
    2,
  ],
];

describeChdb('top N groupings ranked by a coarser number on chDB', () => {
  const config = chdbConfig();
  let client: ClickHouseClient;
  const committed: CommittedAttempt[] = [];

  beforeAll(async () => {
    client = openAnalyticsClient(config);
    await migrateAnalytics(client, { database: 'default', retentionDays: 0 });
    const writer = new AnalyticsHits(client);
    const all = [...CASES.map((c) => c[3]), ...THREAT_CASES.map((c) => c[2])];
    for (const [i, specs] of all.entries()) {
      const account = i + 1;
      committed.push({ uploadId: account, attempt: await writer.write({ accountId: account, uploadId: account }, hits(account, account, specs), null) });
    }
  });
  afterAll(() => closeChdb(client, config));

  it.each(CASES.map((c, i) => [c[0], i] as const))('%s', async (_name, i) => {
    const [, g, first, , expected, statements] = CASES[i];
    const f: ResolvedHitFilter = { accountId: i + 1, from: START, to: START + DAY_MS };
    const executor = new ClickHouseExecutor(client, committed);
    const spy = jest.spyOn(client, 'query');
    let rows: Array<Record<string, unknown>>;
    try {
      rows = (await executor.group(g, f, { first })) as Array<Record<string, unknown>>;
      expect(spy).toHaveBeenCalledTimes(statements);
    } finally {
      spy.mockRestore();
    }
    expect(rows.map((r) => Object.fromEntries(Object.keys(expected[0]).map((k) => [k, r[k]])))).toEqual(expected);
    // The one statement over every hit (no N asked for: no ranking), cut at N.
    expect(rows).toEqual((await executor.group(g, f, {})).slice(0, first));
  });

  it.each(THREAT_CASES.map((c, i) => [c[0], i] as const))('the triage view, %s', async (_name, i) => {
    const [, first, , expected, statements] = THREAT_CASES[i];
    const f: ResolvedHitFilter = { accountId: CASES.length + i + 1, from: START, to: START + DAY_MS, severities: [5] };
    const spy = jest.spyOn(client, 'query');
    try {
      const rows = await new ClickHouseExecutor(client, committed).threats(f, first);
      expect(rows.map((r) => [r.internalIp, r.iocId, r.category, r.hits])).toEqual(expected);
      expect(spy).toHaveBeenCalledTimes(statements);
    } finally {
      spy.mockRestore();
    }
  });

  it('a statement after the ranking failing answers ANALYTICS_UNAVAILABLE, with no rows from the ranking alone', async () => {
    const executor = new ClickHouseExecutor(client, committed);
    const real = client.query.bind(client);
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' });
    const cases: Array<[string, () => Promise<unknown>]> = [
      ['byIoc', () => executor.group(BY_IOC as Grouping<unknown>, { accountId: 1, from: START, to: START + DAY_MS }, { first: 2 })],
      ['threats', () => executor.threats({ accountId: CASES.length + 1, from: START, to: START + DAY_MS, severities: [5] }, 2)],
    ];
    for (const [name, read] of cases) {
      // The ranking answers; the statement that reads the candidates fails, as ClickHouse going away between the two.
      const spy = jest.spyOn(client, 'query').mockImplementationOnce(real).mockRejectedValueOnce(refused);
      try {
        await expect(read()).rejects.toMatchObject({ extensions: { code: 'ANALYTICS_UNAVAILABLE' } });
        expect({ name, calls: spy.mock.calls.length }).toEqual({ name, calls: 2 });
      } finally {
        spy.mockRestore();
      }
    }
  });
});
