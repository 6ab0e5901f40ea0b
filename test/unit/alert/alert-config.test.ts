import { ConfigError, loadConfig } from '../../../src/config/config';

describe('alert delivery settings', () => {
  it('sends 16 at once, 4 of them to one destination, by default; a bad value is refused', () => {
    expect(loadConfig({}).alerts).toMatchObject({ timeoutMs: 10_000, leaseMs: 60_000, concurrency: 16, destinationConcurrency: 4 });
    expect(loadConfig({ ALERT_CONCURRENCY: '2', ALERT_DESTINATION_CONCURRENCY: '1' }).alerts).toMatchObject({ concurrency: 2, destinationConcurrency: 1 });
    // No more to one destination than in flight at all.
    expect(loadConfig({ ALERT_CONCURRENCY: '2', ALERT_DESTINATION_CONCURRENCY: '8' }).alerts.destinationConcurrency).toBe(2);
    for (const bad of ['0', 'many', '1001']) {
      expect(() => loadConfig({ ALERT_CONCURRENCY: bad })).toThrow('ALERT_CONCURRENCY');
      expect(() => loadConfig({ ALERT_DESTINATION_CONCURRENCY: bad })).toThrow('ALERT_DESTINATION_CONCURRENCY');
    }
  });

  it('refuses a send timeout over half the lease: a send must end well within it, or another worker sends again', () => {
    expect(() => loadConfig({ ALERT_TIMEOUT_MS: '30001' })).toThrow(ConfigError);
    expect(() => loadConfig({ ALERT_TIMEOUT_MS: '30001' })).toThrow(/ALERT_TIMEOUT_MS.*at most half of ALERT_LEASE_MS \(60000 ms\)/);
    // A lease under twice the default timeout, set alone, stops a configuration that started before (CHANGELOG names it).
    expect(() => loadConfig({ ALERT_LEASE_MS: '5000' })).toThrow(
      'ALERT_TIMEOUT_MS="10000 (the default)"; expected at most half of ALERT_LEASE_MS (5000 ms), so a send ends well within its lease: set ALERT_TIMEOUT_MS to 2500 or less, or lengthen ALERT_LEASE_MS',
    );
    expect(loadConfig({ ALERT_LEASE_MS: '5000', ALERT_TIMEOUT_MS: '2500' }).alerts).toMatchObject({ timeoutMs: 2_500, leaseMs: 5_000 });
    expect(loadConfig({ ALERT_TIMEOUT_MS: '30000' }).alerts.timeoutMs).toBe(30_000);
    expect(loadConfig({ ALERT_TIMEOUT_MS: '60000', ALERT_LEASE_MS: '120000' }).alerts).toMatchObject({ timeoutMs: 60_000, leaseMs: 120_000 });
  });
});
