import { PassThrough } from 'node:stream';
import { createLogger } from '../../../src/app/logger';
import { captureLog } from '../../helpers/logs';

describe('createLogger', () => {
  it('writes JSON lines to the destination it is given, at its level', () => {
    const log = captureLog('warn');
    log.logger.info('not at warn');
    log.logger.warn({ uploadId: 3 }, 'kept');
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]).toMatchObject({ level: 40, msg: 'kept', uploadId: 3, service: 'pcap-defense' });
  });

  it('censors secret-carrying fields logged by mistake', () => {
    const log = captureLog('trace');
    log.logger.info(
      { token: 'pcd_a', secret: 'pcd_b', authorization: 'Bearer pcd_c', headers: { authorization: 'Bearer pcd_d' }, form: { token: 'pcd_e' } },
      'oops',
    );
    expect(log.text()).not.toMatch(/pcd_/);
    expect(log.lines[0]).toMatchObject({ token: '[redacted]', secret: '[redacted]', headers: { authorization: '[redacted]' }, form: { token: '[redacted]' } });
  });

  it('pretty-prints for a terminal (pino-pretty), JSON otherwise', () => {
    const prettySink = new PassThrough();
    let out = '';
    prettySink.on('data', (d) => (out += d));
    createLogger('info', { pretty: true, destination: prettySink }).info({ uploadId: 9 }, 'hello there');
    expect(out).toContain('hello there');
    expect(out).toContain('uploadId');
    expect(() => JSON.parse(out)).toThrow();
    const sink = new PassThrough();
    let json = '';
    sink.on('data', (d) => (json += d));
    createLogger('info', { destination: sink }).info('plain');
    expect(JSON.parse(json)).toMatchObject({ msg: 'plain' });
  });
});
