import { clip } from '../../../src/common/text';

describe('clip', () => {
  it('keeps text within the limit whole and cuts longer text at the limit', () => {
    expect(clip('abc', 3)).toBe('abc');
    expect(clip('abcd', 3)).toBe('abc');
    expect(clip('', 0)).toBe('');
  });

  it('never leaves half of a surrogate pair: a character that does not fit is dropped whole', () => {
    const text = `${'L'.repeat(499)}🦀${'x'.repeat(100)}`;
    expect(clip(text, 500)).toBe('L'.repeat(499));
    expect(clip(text, 501)).toBe(`${'L'.repeat(499)}🦀`);
    expect(clip('🦀🦀', 3)).toBe('🦀');
    // Other characters are cut as slice cuts them.
    expect(clip('网络网络', 3)).toBe('网络网');
    for (let max = 1; max < 12; max++) expect(Buffer.from(clip('a🦀b😀c网d', max), 'utf8').toString('utf8')).toBe(clip('a🦀b😀c网d', max));
  });
});
