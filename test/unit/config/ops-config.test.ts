import { ConfigError, loadConfig } from '../../../src/config/config';

describe('loadConfig: LOG_LEVEL and metrics', () => {
  it('defaults to info and metrics off', () => {
    expect(loadConfig({})).toMatchObject({ logLevel: 'info', metrics: { enabled: false, token: null } });
  });

  it.each(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent', 'WARN'])('accepts LOG_LEVEL=%s', (level) => {
    expect(loadConfig({ LOG_LEVEL: level }).logLevel).toBe(level.toLowerCase());
  });

  it.each(['verbose', 'warning', '10'])('refuses LOG_LEVEL=%s naming the levels', (level) => {
    expect(() => loadConfig({ LOG_LEVEL: level })).toThrow(ConfigError);
    expect(() => loadConfig({ LOG_LEVEL: level })).toThrow(/LOG_LEVEL=.*expected trace, debug, info, warn, error, fatal, silent/);
  });

  it('needs METRICS_TOKEN (16 characters or more) when METRICS_ENABLED=true, and never echoes it', () => {
    expect(() => loadConfig({ METRICS_ENABLED: 'true' })).toThrow(/METRICS_TOKEN/);
    let error: unknown;
    try {
      loadConfig({ METRICS_ENABLED: 'true', METRICS_TOKEN: 'short-secret' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe('METRICS_TOKEN');
    expect((error as Error).message).not.toContain('short-secret');
    expect(loadConfig({ METRICS_ENABLED: 'true', METRICS_TOKEN: ' 0123456789abcdef ' }).metrics).toEqual({ enabled: true, token: '0123456789abcdef' });
    // A token without METRICS_ENABLED does not turn metrics on.
    expect(loadConfig({ METRICS_TOKEN: '0123456789abcdef' }).metrics).toEqual({ enabled: false, token: null });
    expect(() => loadConfig({ METRICS_ENABLED: 'sometimes' })).toThrow(/METRICS_ENABLED/);
  });
});
