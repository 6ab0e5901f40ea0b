import path from 'node:path';
import os from 'node:os';
import { ConfigError, giveWayDefault, loadConfig } from '../../../src/config/config';

describe('loadConfig', () => {
  it('defaults to the embedded SQLite file under ./data and port 4000', () => {
    const c = loadConfig({}, '/srv/app');
    expect(c.database).toEqual({ type: 'sqlite', file: path.join('/srv/app/data', 'pcap-defense.sqlite'), url: undefined });
    expect(c).toMatchObject({
      port: 4000,
      host: '0.0.0.0',
      nodeEnv: 'development',
      introspection: true,
      explorer: 'embedded',
      corsOrigins: [],
      maxUploadBytes: 15_000_000,
    });
  });

  it('computes reports on one thread by default; REPORT_THREADS=0 computes them on the main thread, a bad value is refused', () => {
    expect(loadConfig({}).reportThreads).toBe(1);
    expect(loadConfig({ REPORT_THREADS: '0' }).reportThreads).toBe(0);
    expect(loadConfig({ REPORT_THREADS: '2' }).reportThreads).toBe(2);
    for (const bad of ['-1', 'one', '65']) expect(() => loadConfig({ REPORT_THREADS: bad })).toThrow('REPORT_THREADS');
  });

  it('shares store reports by default, keeping 256 results; REPORT_SHARING=false turns it off, a bad value is refused', () => {
    expect(loadConfig({}).reportSharing).toBe(true);
    expect(loadConfig({}).reportSharedResults).toBe(256);
    expect(loadConfig({ REPORT_SHARING: 'false' }).reportSharing).toBe(false);
    expect(loadConfig({ REPORT_SHARED_RESULTS: '0' }).reportSharedResults).toBe(0);
    for (const bad of ['-1', 'many', '100001']) expect(() => loadConfig({ REPORT_SHARED_RESULTS: bad })).toThrow('REPORT_SHARED_RESULTS');
    expect(() => loadConfig({ REPORT_SHARING: 'maybe' })).toThrow('REPORT_SHARING');
  });

  it('gives way to upload jobs for 250 ms by default where cores are fewer than the busy threads; REPORT_GIVE_WAY_MS sets it, 0 turns it off', () => {
    // The event loop, a parse thread and a report thread: 3 threads want a core each.
    expect(giveWayDefault(1, 1, 2)).toBe(250);
    expect(giveWayDefault(1, 1, 3)).toBe(0);
    expect(giveWayDefault(1, 2, 3)).toBe(250);
    expect(giveWayDefault(0, 0, 2)).toBe(0);
    // From the thread settings as loaded.
    const cores = os.availableParallelism();
    expect(loadConfig({}).reportGiveWayMs).toBe(giveWayDefault(1, 1, cores));
    expect(loadConfig({ REPORT_THREADS: '2' }).reportGiveWayMs).toBe(giveWayDefault(1, 2, cores));
    expect(loadConfig({ PARSE_THREADS: '0', REPORT_THREADS: '0' }).reportGiveWayMs).toBe(giveWayDefault(0, 0, cores));
    expect(() => loadConfig({ PARSE_THREADS: 'x' })).toThrow('PARSE_THREADS');
    expect(loadConfig({ REPORT_GIVE_WAY_MS: '0' }).reportGiveWayMs).toBe(0);
    expect(loadConfig({ REPORT_GIVE_WAY_MS: '1000' }).reportGiveWayMs).toBe(1000);
    for (const bad of ['-1', 'soon', '10001']) expect(() => loadConfig({ REPORT_GIVE_WAY_MS: bad })).toThrow('REPORT_GIVE_WAY_MS');
  });

  it('runs report threads at nice 10 by default; REPORT_THREAD_NICE sets it (0-19), 0 keeps their priority', () => {
    expect(loadConfig({}).reportThreadNice).toBe(10);
    expect(loadConfig({ REPORT_THREAD_NICE: '0' }).reportThreadNice).toBe(0);
    expect(loadConfig({ REPORT_THREAD_NICE: '19' }).reportThreadNice).toBe(19);
    for (const bad of ['-1', 'low', '20']) expect(() => loadConfig({ REPORT_THREAD_NICE: bad })).toThrow('REPORT_THREAD_NICE');
  });

  it('parses uploads on one thread by default; PARSE_THREADS=0 parses on the main thread, a bad value is refused', () => {
    expect(loadConfig({}).worker.parseThreads).toBe(1);
    expect(loadConfig({ PARSE_THREADS: '0' }).worker.parseThreads).toBe(0);
    expect(loadConfig({ PARSE_THREADS: '3' }).worker.parseThreads).toBe(3);
    for (const bad of ['-1', 'two', '65']) expect(() => loadConfig({ PARSE_THREADS: bad })).toThrow('PARSE_THREADS');
  });

  it('turns introspection off in production unless asked for; the explorer is the same in every NODE_ENV', () => {
    expect(loadConfig({ NODE_ENV: 'production' })).toMatchObject({ introspection: false, explorer: 'embedded' });
    expect(loadConfig({ NODE_ENV: 'production', GRAPHQL_EXPLORER: 'off' })).toMatchObject({ explorer: 'off' });
    expect(loadConfig({ GRAPHQL_EXPLORER: 'Sandbox' })).toMatchObject({ explorer: 'sandbox' });
    expect(loadConfig({ NODE_ENV: 'production', GRAPHQL_INTROSPECTION: 'true' })).toMatchObject({ introspection: true });
  });

  it('reads MySQL URLs and names MariaDB when the scheme says so', () => {
    expect(loadConfig({ DATABASE_URL: 'mysql://u:p@db:3306/pcap' }).database).toEqual({
      type: 'mysql',
      url: 'mysql://u:p@db:3306/pcap',
      file: undefined,
      flavor: undefined,
    });
    expect(loadConfig({ DATABASE_URL: 'mariadb://u@db/pcap' }).database).toMatchObject({ url: 'mysql://u@db/pcap', flavor: 'mariadb' });
  });

  it('reads CORS_ORIGINS as exact origins', () => {
    expect(loadConfig({ CORS_ORIGINS: ' https://dash.example.com, http://localhost:5173 ,https://dash.example.com' }).corsOrigins).toEqual([
      'https://dash.example.com',
      'http://localhost:5173',
    ]);
    expect(loadConfig({ CORS_ORIGINS: 'https://[2001:db8::1]:8443' }).corsOrigins).toEqual(['https://[2001:db8::1]:8443']);
  });

  it.each([
    '*',
    'https://*.example.com',
    'https://dash.example.com/',
    'https://dash.example.com/app',
    'HTTPS://Dash.example.com',
    'dash.example.com',
    'ftp://x.example.com',
    'null',
    'https://ok.example.com,*',
  ])('refuses CORS_ORIGINS=%j: exact origins only', (origin) => {
    expect(() => loadConfig({ CORS_ORIGINS: origin })).toThrow(
      'expected a comma-separated list of exact origins such as https://dash.example.com,http://localhost:5173 (scheme, host and port; no path, no wildcard)',
    );
  });

  it('parses sizes with units', () => {
    expect(loadConfig({ MAX_UPLOAD_BYTES: '15MB' }).maxUploadBytes).toBe(15_000_000);
    expect(loadConfig({ MAX_UPLOAD_BYTES: '1MiB' }).maxUploadBytes).toBe(1_048_576);
    expect(loadConfig({ MAX_UPLOAD_BYTES: '2048' }).maxUploadBytes).toBe(2048);
  });

  it.each([
    [{ PORT: 'http' }, 'PORT', 'a whole number from 0 to 65535'],
    [{ PORT: '70000' }, 'PORT', 'a whole number from 0 to 65535'],
    [{ NODE_ENV: 'staging' }, 'NODE_ENV', 'development, production or test'],
    [{ GRAPHQL_INTROSPECTION: 'maybe' }, 'GRAPHQL_INTROSPECTION', 'true or false'],
    [{ GRAPHQL_EXPLORER: 'graphiql' }, 'GRAPHQL_EXPLORER', 'embedded, sandbox, off'],
    [{ GRAPHQL_SANDBOX: 'false' }, 'GRAPHQL_SANDBOX', 'unset: it was replaced by GRAPHQL_EXPLORER=embedded|sandbox|off'],
    [{ MAX_UPLOAD_BYTES: 'lots' }, 'MAX_UPLOAD_BYTES', 'a size such as 15000000, 15MB or 512KiB'],
    [{ DATABASE_URL: 'postgres://x@y/z' }, 'DATABASE_URL', 'a mysql:// URL, or unset for the embedded SQLite file'],
    [{ DATABASE_URL: 'mysql://x@y' }, 'DATABASE_URL', 'a database name in the path (mysql://user:pass@host:3306/db)'],
  ])('refuses %j naming the variable and what it expects', (env, variable, expected) => {
    let error: unknown;
    try {
      loadConfig(env as Record<string, string>);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe(variable);
    expect((error as ConfigError).message).toContain(`expected ${expected}`);
  });

  it('never echoes a database password in the error', () => {
    expect(() => loadConfig({ DATABASE_URL: 'postgres://u:s3cret@h/db' })).toThrow(/postgres:\/\/…/);
    expect(() => loadConfig({ DATABASE_URL: 'postgres://u:s3cret@h/db' })).not.toThrow(/s3cret/);
  });
});

describe('loadConfig: ANALYTICS_URL', () => {
  it('is off unless set', () => {
    expect(loadConfig({}).analytics).toBeNull();
    expect(loadConfig({ ANALYTICS_URL: ' ' }).analytics).toBeNull();
  });

  it('reads a ClickHouse server URL and its database (default when the path is empty)', () => {
    expect(loadConfig({ ANALYTICS_URL: 'http://u:p@ch:8123/pcd' }).analytics).toEqual({ kind: 'http', url: 'http://u:p@ch:8123/pcd', database: 'pcd' });
    expect(loadConfig({ ANALYTICS_URL: 'https://ch:8443' }).analytics).toEqual({ kind: 'http', url: 'https://ch:8443', database: 'default' });
  });

  it('reads chdb:///path as a directory for the embedded engine', () => {
    expect(loadConfig({ ANALYTICS_URL: 'chdb:///var/lib/pcd/ch' }, '/srv').analytics).toEqual({ kind: 'chdb', path: '/var/lib/pcd/ch', database: 'default' });
    expect(() => loadConfig({ ANALYTICS_URL: 'chdb:///' })).toThrow(ConfigError);
  });

  it('refuses other schemes and bad database names without echoing a password', () => {
    expect(() => loadConfig({ ANALYTICS_URL: 'tcp://u:s3cret@ch:9000/db' })).toThrow(/ANALYTICS_URL/);
    expect(() => loadConfig({ ANALYTICS_URL: 'tcp://u:s3cret@ch:9000/db' })).not.toThrow(/s3cret/);
    expect(() => loadConfig({ ANALYTICS_URL: 'http://u:s3cret@ch:8123/a-b' })).toThrow(/letters, digits/);
    expect(() => loadConfig({ ANALYTICS_URL: 'http://u:s3cret@ch:8123/a-b' })).not.toThrow(/s3cret/);
    expect(() => loadConfig({ ANALYTICS_URL: 'not a url' })).toThrow(/ANALYTICS_URL/);
  });
});
