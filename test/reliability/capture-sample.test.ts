import { sampleCaptureTimes } from '../../src/modules/log-upload/acceptance/capture-sample';

const line = (sec: number) => `${sec}.000000 IP 10.0.0.1.1000 > 192.1.2.3.80: Flags [S], seq 1, win 1, length 0\n`;

describe('dating a capture from its two ends before it is parsed', () => {
  it('reads the packets of a short file whole', () => {
    const text = Buffer.from(line(1_700_000_100) + line(1_700_000_000));
    expect(sampleCaptureTimes(text, text, text.length)).toEqual({ earliest: 1_700_000_000_000, latest: 1_700_000_100_000 });
  });

  it('drops lines cut by a sample edge: the tail of a timestamp is not a timestamp', () => {
    const body = line(1_700_000_000) + '#\n'.repeat(5000) + line(1_700_000_500) + line(1_700_000_900);
    const text = Buffer.from(body);
    // The tail starts 3 characters into the second-last line: "0000500.000000 IP ..." would read as 1970.
    const tailStart = body.lastIndexOf(line(1_700_000_500)) + 3;
    const sample = sampleCaptureTimes(text.subarray(0, 4096), text.subarray(tailStart), text.length);
    expect(sample).toEqual({ earliest: 1_700_000_000_000, latest: 1_700_000_900_000 });
    // A head cut inside its last line keeps the whole lines before it only.
    const cutHead = Buffer.from(line(1_700_000_000) + line(1_700_000_001).slice(0, 30));
    expect(sampleCaptureTimes(cutHead, Buffer.from('no newline at all'), 1_000_000)).toEqual({ earliest: 1_700_000_000_000, latest: 1_700_000_000_000 });
  });

  it('says nothing when neither end holds a packet', () => {
    const text = Buffer.from('# comment\n'.repeat(1000));
    expect(sampleCaptureTimes(text.subarray(0, 4096), text.subarray(-4096), text.length)).toBeNull();
  });
});
