import fc from 'fast-check';
import { fromGlobalId, idOfType, toGlobalId } from '../../../src/common/ids/global-id';
import { decodeCursor, encodeCursor } from '../../../src/common/pagination/cursor';

describe('global IDs', () => {
  it('round-trip type and key, and are opaque', () => {
    const id = toGlobalId('Device', 42);
    expect(id).not.toContain('42');
    expect(fromGlobalId(id)).toEqual({ type: 'Device', id: 42 });
    expect(idOfType(id, 'Device')).toBe(42);
    expect(idOfType(id, 'Policy')).toBeNull();
  });

  it.each([
    '',
    '42',
    'RGV2aWNlOjQy',
    '!!!',
    'a'.repeat(100),
    Buffer.from('pd1:Device:0').toString('base64url'),
    Buffer.from('pd1:Device:-1').toString('base64url'),
    Buffer.from('pd1:Device:1e3').toString('base64url'),
  ])('decode %j to null', (bad) => {
    expect(fromGlobalId(bad)).toBeNull();
  });

  it('round-trips any positive key (property)', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), (n) => idOfType(toGlobalId('Ioc', n), 'Ioc') === n));
  });

  it('never throws on arbitrary strings (property)', () => {
    fc.assert(fc.property(fc.string(), (s) => fromGlobalId(s) === null || typeof fromGlobalId(s)!.id === 'number'));
  });
});

describe('cursor codec', () => {
  it('round-trips values for its own ordering only', () => {
    const c = encodeCursor('device', [17]);
    expect(decodeCursor(c, 'device', 1)).toEqual([17]);
    expect(decodeCursor(c, 'policy', 1)).toBeNull();
    expect(decodeCursor(c, 'device', 2)).toBeNull();
    const two = encodeCursor('hits', [1700000000000, 'x', 5]);
    expect(decodeCursor(two, 'hits', 3)).toEqual([1700000000000, 'x', 5]);
  });

  it.each(['', 'not json', Buffer.from('{"a":1}').toString('base64url'), Buffer.from('["device",{}]').toString('base64url'), 'a/b'])('refuses %j', (bad) => {
    expect(decodeCursor(bad, 'device', 1)).toBeNull();
  });

  it('round-trips arbitrary key tuples (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.string(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })), { minLength: 1, maxLength: 4 }),
        (vals) => {
          const decoded = decodeCursor(encodeCursor('t', vals), 't', vals.length);
          // JSON turns -0 into 0; otherwise values come back exactly.
          return decoded !== null && decoded.every((v, i) => Object.is(v, vals[i]) || (v === 0 && vals[i] === 0));
        },
      ),
    );
  });
});
