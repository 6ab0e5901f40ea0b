import { ConfigError, loadConfig } from '../../../src/config/config';

describe('security settings', () => {
  it('have defaults', () => {
    const c = loadConfig({});
    expect(c.queryLimits).toEqual({ depth: 12, aliases: 30, directives: 50, tokens: 2000, cost: 10_000 });
    expect(c.rateLimits).toEqual({ uploadsPerMinute: 60, reportsPerMinute: 120 });
    expect(c.maxRequestBytes).toBe(1_000_000);
    expect(c.requestTimeoutMs).toBe(300_000);
    expect(c.shutdownTimeoutMs).toBe(10_000);
  });

  it('read the environment; 0 turns a rate limit off', () => {
    const c = loadConfig({
      MAX_QUERY_DEPTH: '8',
      MAX_QUERY_ALIASES: '5',
      MAX_QUERY_DIRECTIVES: '3',
      MAX_QUERY_TOKENS: '500',
      MAX_QUERY_COST: '2500',
      RATE_LIMIT_UPLOADS_PER_MINUTE: '0',
      RATE_LIMIT_REPORTS_PER_MINUTE: '10',
      MAX_REQUEST_BYTES: '64KiB',
      REQUEST_TIMEOUT_MS: '5000',
      SHUTDOWN_TIMEOUT_MS: '0',
    });
    expect(c.queryLimits).toEqual({ depth: 8, aliases: 5, directives: 3, tokens: 500, cost: 2500 });
    expect(c.rateLimits).toEqual({ uploadsPerMinute: 0, reportsPerMinute: 10 });
    expect(c.maxRequestBytes).toBe(65_536);
    expect(c.requestTimeoutMs).toBe(5000);
    expect(c.shutdownTimeoutMs).toBe(0);
  });

  it.each([
    ['MAX_QUERY_DEPTH', '0'],
    ['MAX_QUERY_DEPTH', 'deep'],
    ['MAX_QUERY_ALIASES', '-1'],
    ['MAX_QUERY_DIRECTIVES', '1.5'],
    ['MAX_QUERY_TOKENS', '5'],
    ['MAX_QUERY_COST', '0'],
    ['RATE_LIMIT_UPLOADS_PER_MINUTE', 'lots'],
    ['RATE_LIMIT_REPORTS_PER_MINUTE', '-5'],
    ['MAX_REQUEST_BYTES', '1 tonne'],
    ['REQUEST_TIMEOUT_MS', '10'],
    ['SHUTDOWN_TIMEOUT_MS', '99999999'],
  ])('refuses %s=%s, naming it', (variable, value) => {
    let error: unknown;
    try {
      loadConfig({ [variable]: value });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe(variable);
    expect((error as ConfigError).message).toContain(variable);
  });
});
