import { createTestApp, ok, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';
import { idOfType } from '../../../src/common/ids/global-id';
import { AlertHit, MAX_THROTTLE_MS, writeAlerts } from '../../../src/modules/alert/alert-outbox';
import { HitFoundBy, HitKind } from '../../../src/modules/alert/alert.enums';
import { AlertThrottle1764700000000 } from '../../../migrations/1764700000000-AlertThrottle';

/**
 * Throttle windows start at a key's first alert (#19 item 3): one alert per (rule, entry, internal host) per
 * throttleMinutes, wherever the clock's hours fall. Before, windows were aligned to multiples of their length
 * since the epoch, and two hits a minute apart either side of the top of the hour raised two alerts.
 */
describe.each(drivers)('alert throttle windows (%s)', (driver) => {
  let t: TestApp;
  let ruleId: number;
  const HOUR = 3_600_000;
  // 10:59:30 UTC on 2026-12-05: thirty seconds before the top of the hour.
  const T = Date.UTC(2026, 11, 5, 10, 59, 30);

  beforeAll(async () => {
    t = await createTestApp(driver, { ALERT_DESTINATION_ALLOW: '127.0.0.0/8' });
    const dest = ok(
      await t.gql(`mutation($i: AlertDestinationCreateInput!) { alertDestinationCreate(input: $i) { alertDestination { id } userErrors { message } } }`, {
        i: { name: 'hook', webhook: { url: 'http://127.0.0.1:9/hook' } },
      }),
    ).alertDestinationCreate.alertDestination.id;
    const rule = ok(
      await t.gql(`mutation($i: AlertRuleCreateInput!) { alertRuleCreate(input: $i) { alertRule { id throttleMinutes } userErrors { message } } }`, {
        i: { name: 'all', minSeverity: 0, destinations: [dest] },
      }),
    ).alertRuleCreate;
    expect(rule.userErrors).toEqual([]);
    expect(rule.alertRule.throttleMinutes).toBe(60);
    ruleId = Number(idOfType(rule.alertRule.id, 'AlertRule'));
  });
  afterAll(() => t.close());
  beforeEach(async () => {
    await t.dataSource.query(`DELETE FROM alert_delivery`);
    await t.dataSource.query(`DELETE FROM alert`);
    await t.dataSource.query(`DELETE FROM alert_throttle`);
  });

  const hit = (iocId: number, internalIp = '10.0.0.1'): AlertHit => ({
    kind: HitKind.IP,
    iocId,
    iocListId: 1,
    deviceId: 1,
    internalKey: `k-${internalIp}`,
    internalIp,
    externalIp: '198.51.100.7',
    qname: null,
    direction: 'OUTBOUND',
    severity: 4,
    category: 'MALWARE',
    foundBy: HitFoundBy.UPLOAD,
    firstSeenAt: 1000,
    lastSeenAt: 2000,
  });
  const write = (now: number, hits: AlertHit[]) => t.dataSource.transaction((em) => writeAlerts(em, { accountId: t.accountId, uploadId: 1 }, hits, now));
  const alerts = async () =>
    (
      (await t.dataSource.query(`SELECT ioc_id, internal_key, window_start, hit_count FROM alert ORDER BY ioc_id, internal_key, window_start`)) as Array<
        Record<string, string | number>
      >
    ).map((r) => [Number(r.ioc_id), r.internal_key, Number(r.window_start) - T, Number(r.hit_count)]);
  const deliveries = async () => Number(((await t.dataSource.query(`SELECT COUNT(*) AS n FROM alert_delivery`)) as Array<{ n: number | string }>)[0].n);

  it('keeps one alert for hits either side of the top of the hour, and starts the next window an hour after the first alert', async () => {
    await write(T, [hit(10)]);
    await write(T + 60_000, [hit(10), hit(10)]); // 11:00:30: the same window, which started at 10:59:30
    await write(T + HOUR - 1, [hit(10)]); // its last millisecond
    expect(await alerts()).toEqual([[10, 'k-10.0.0.1', 0, 4]]);
    await write(T + HOUR, [hit(10)]); // an hour after the first alert: a new window, a new alert
    await write(T + HOUR + 30 * 60_000, [hit(10)]);
    expect(await alerts()).toEqual([
      [10, 'k-10.0.0.1', 0, 4],
      [10, 'k-10.0.0.1', HOUR, 2],
    ]);
    // One delivery per alert.
    expect(await deliveries()).toBe(2);
  });

  it('keys windows apart: each (entry, host) starts its own at its first alert', async () => {
    await write(T, [hit(10)]);
    await write(T + 20 * 60_000, [hit(10), hit(11), hit(10, '10.0.0.2')]);
    await write(T + HOUR + 1, [hit(10), hit(11)]);
    expect(await alerts()).toEqual([
      [10, 'k-10.0.0.1', 0, 2],
      [10, 'k-10.0.0.1', HOUR + 1, 1],
      [10, 'k-10.0.0.2', 20 * 60_000, 1],
      [11, 'k-10.0.0.1', 20 * 60_000, 2],
    ]);
  });

  it('gives two writers of the same keys at once one window: the second waits on the first and joins its alerts', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let wrote!: () => void;
    const firstWrote = new Promise<void>((r) => (wrote = r));
    const hits = Array.from({ length: 300 }, (_, i) => hit(100 + i)); // more than one statement's chunk of keys
    const first = t.dataSource.transaction(async (em) => {
      await writeAlerts(em, { accountId: t.accountId, uploadId: 1 }, hits, T);
      wrote();
      await held;
    });
    await firstWrote;
    // Starts while the first holds its rows (SQLite: waits for the first's transaction to end; MariaDB: on its row locks).
    const second = write(T + 5_000, hits);
    await new Promise((r) => setTimeout(r, 200));
    release();
    await Promise.all([first, second]);
    const rows = await alerts();
    expect(rows).toHaveLength(300);
    expect(rows.every((r) => r[2] === 0 && r[3] === 2)).toBe(true);
    expect(await deliveries()).toBe(300);
  });

  it('forgets windows a week old (the longest throttle) and starts a new one at the next hit', async () => {
    await write(T, [hit(10)]);
    await write(T + 20 * 60_000, [hit(11)]);
    expect(await t.services.alertDispatcher.pruneThrottle(T + MAX_THROTTLE_MS)).toBe(1);
    // At most hourly: the other key's window is a week old 30 minutes later, and kept until the next hourly prune.
    expect(await t.services.alertDispatcher.pruneThrottle(T + MAX_THROTTLE_MS + 30 * 60_000)).toBe(0);
    const left = (await t.dataSource.query(`SELECT ioc_id FROM alert_throttle`)) as Array<{ ioc_id: number | string }>;
    expect(left.map((r) => Number(r.ioc_id))).toEqual([11]);
    await write(T + MAX_THROTTLE_MS + 1, [hit(10)]);
    expect(await alerts()).toEqual([
      [10, 'k-10.0.0.1', 0, 1],
      [10, 'k-10.0.0.1', MAX_THROTTLE_MS + 1, 1],
      [11, 'k-10.0.0.1', 20 * 60_000, 1],
    ]);
    expect(await t.services.alertDispatcher.pruneThrottle(T + MAX_THROTTLE_MS + HOUR)).toBe(1);
  });

  it('migrates: each alerted key of an existing rule carries on in its newest window', async () => {
    await write(T, [hit(10), hit(11)]);
    await write(T + 2 * HOUR, [hit(10)]);
    // Alerts of a rule since deleted keep no window.
    await t.dataSource.query(
      `INSERT INTO alert (account_id, rule_id, hit_kind, ioc_id, ioc_list_id, device_id, internal_key, internal_ip, external_ip, direction, severity, category, found_by, window_start, hit_count, first_seen_at, last_seen_at, created_at)
       VALUES (?, ?, 'IP', 12, 1, 1, 'k-x', '10.0.0.9', '', 'OUTBOUND', 1, 'MALWARE', 'UPLOAD', ?, 1, 0, 0, ?)`,
      [t.accountId, ruleId + 1000, T, T],
    );
    const migration = new AlertThrottle1764700000000();
    const runner = t.dataSource.createQueryRunner();
    try {
      await migration.down(runner);
      await migration.up(runner);
    } finally {
      await runner.release();
    }
    const rows = (await t.dataSource.query(`SELECT rule_id, ioc_id, window_start FROM alert_throttle ORDER BY ioc_id`)) as Array<
      Record<string, string | number>
    >;
    expect(rows.map((r) => [Number(r.rule_id), Number(r.ioc_id), Number(r.window_start) - T])).toEqual([
      [ruleId, 10, 2 * HOUR],
      [ruleId, 11, 0],
    ]);
    await write(T + 2 * HOUR + 10, [hit(10), hit(11)]);
    expect((await alerts()).filter((r) => r[0] !== 12)).toEqual([
      [10, 'k-10.0.0.1', 0, 1],
      [10, 'k-10.0.0.1', 2 * HOUR, 2],
      [11, 'k-10.0.0.1', 0, 1],
      [11, 'k-10.0.0.1', 2 * HOUR + 10, 1],
    ]);
  });
});
