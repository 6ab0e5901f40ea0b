import { AnalyticsUnavailableError, analyticsUnavailable, analyticsUnavailableCause, onAnalytics } from '../../../src/modules/analytics/analytics-errors';

/** Which ClickHouse failures are a moment of the tier's (the job waits for it) and which are bugs (the job fails). */
const err = (message: string, fields: Record<string, unknown> = {}) => Object.assign(new Error(message), fields);

describe('analytics errors', () => {
  it.each([
    ['a refused connection', err('connect ECONNREFUSED 127.0.0.1:8123', { code: 'ECONNREFUSED' }), 'ECONNREFUSED'],
    ['a reset socket under the client', err('request failed', { cause: err('read ECONNRESET', { code: 'ECONNRESET' }) }), 'ECONNRESET'],
    ['the client’s request timeout', err('Timeout error.'), 'TIMEOUT'],
    ['a server error by name', err('Too many parts', { code: '252', type: 'TOO_MANY_PARTS' }), 'TOO_MANY_PARTS'],
    ['a server error by number only', err('Memory limit (total) exceeded', { code: '241' }), 'MEMORY_LIMIT_EXCEEDED'],
    ['chDB’s session closed', err('session closed', { code: 'CHDB_CLOSED' }), 'CHDB_CLOSED'],
    ['a proxy answering for the server', err('503 Service Unavailable'), 'HTTP_UNAVAILABLE'],
    ['a syntax error (a bug)', err('Syntax error', { code: '62', type: 'SYNTAX_ERROR' }), null],
    ['an unknown column (a bug)', err('Missing columns', { code: '47', type: 'UNKNOWN_IDENTIFIER' }), null],
    ['any other error', new TypeError('x is undefined'), null],
  ])('%s', (_name, error, code) => {
    expect(analyticsUnavailable(error)).toBe(code);
  });

  it('wraps the transient failures of a ClickHouse call, and only those', async () => {
    const refused = err('connect ECONNREFUSED', { code: 'ECONNREFUSED' });
    const wrapped = await onAnalytics(() => Promise.reject(refused)).catch((e: unknown) => e);
    expect(wrapped).toBeInstanceOf(AnalyticsUnavailableError);
    expect((wrapped as AnalyticsUnavailableError).cause).toBe(refused);
    const bug = err('Syntax error', { code: '62', type: 'SYNTAX_ERROR' });
    expect(await onAnalytics(() => Promise.reject(bug)).catch((e: unknown) => e)).toBe(bug);
    expect(await onAnalytics(() => Promise.resolve(7))).toBe(7);
  });

  it('counts as the tier unavailable only what a ClickHouse call raised: SQL’s refused connection is the database’s', () => {
    expect(analyticsUnavailableCause(err('connect ECONNREFUSED 127.0.0.1:3306', { code: 'ECONNREFUSED' }))).toBeNull();
    expect(analyticsUnavailableCause(new AnalyticsUnavailableError('NOT_MIGRATED'))).toBe('NOT_MIGRATED');
    expect(analyticsUnavailableCause(err('job failed', { cause: new AnalyticsUnavailableError('TIMEOUT') }))).toBe('TIMEOUT');
  });
});
