/** A seeded PRNG (mulberry32): the same captures every run. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface GeneratedCapture {
  text: Buffer;
  /** Addresses on the "bad" list that the capture talks to. */
  badAddresses: string[];
  /** Connections to them: the hits a policy with the bad list must find. */
  badFlows: number;
}

/**
 * tcpdump -tt -n text of `flows` TCP connections between internal 10.x hosts and public servers, each a
 * handshake plus `packetsPerFlow` data packets; one in `badEvery` servers is on the bad list.
 */
export function generateCapture(seed: number, flows: number, packetsPerFlow: number, badEvery = 10): GeneratedCapture {
  const r = rng(seed);
  const lines: string[] = [];
  const bad = new Set<string>();
  let badFlows = 0;
  let ts = 1_700_000_000;
  for (let f = 0; f < flows; f++) {
    const client = `10.${1 + Math.floor(r() * 200)}.${Math.floor(r() * 250)}.${1 + Math.floor(r() * 250)}`;
    const isBad = f % badEvery === 0;
    const server = isBad
      ? `198.51.100.${1 + (f % 250)}`
      : `${20 + Math.floor(r() * 150)}.${Math.floor(r() * 250)}.${Math.floor(r() * 250)}.${1 + Math.floor(r() * 250)}`;
    if (isBad) {
      bad.add(server);
      badFlows++;
    }
    const cport = 1024 + Math.floor(r() * 60000);
    const sport = [80, 443, 22, 8080][f % 4];
    const at = (dt: number) => {
      ts += dt;
      return ts.toFixed(6);
    };
    lines.push(
      `${at(0.001)} IP ${client}.${cport} > ${server}.${sport}: Flags [S], seq 1, win 64240, options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0`,
    );
    lines.push(
      `${at(0.001)} IP ${server}.${sport} > ${client}.${cport}: Flags [S.], seq 7, ack 2, win 65160, options [mss 1460,sackOK,TS val 2 ecr 1,nop,wscale 7], length 0`,
    );
    for (let p = 0; p < packetsPerFlow; p++) {
      const len = Math.floor(r() * 1400);
      lines.push(
        p % 2 === 0
          ? `${at(0.0005)} IP ${client}.${cport} > ${server}.${sport}: Flags [P.], seq ${p}:${p + len}, ack 1, win 502, options [nop,nop,TS val 3 ecr 2], length ${len}`
          : `${at(0.0005)} IP ${server}.${sport} > ${client}.${cport}: Flags [.], ack ${p}, win 509, options [nop,nop,TS val 4 ecr 3], length ${len}`,
      );
    }
  }
  return { text: Buffer.from(`${lines.join('\n')}\n`), badAddresses: [...bad], badFlows };
}

const syntheticLine = (n: number) => `17000${String(n).padStart(5, '0')}.000000 IP 10.0.0.1.1000 > 192.1.2.3.80: Flags [S], seq 1, win 1, length 0\n`;

/** At least `bytes` of well-formed tcpdump text (one SYN a line), for size limits. */
export function packetText(bytes: number): Buffer {
  let s = '';
  for (let n = 0; s.length < bytes; n++) s += syntheticLine(n);
  return Buffer.from(s);
}

/** A binary pcap file of `bytes`: global header (little-endian microsecond magic), then filler records. */
export function pcapBytes(bytes: number): Buffer {
  const b = Buffer.alloc(bytes, 0x5a);
  b.writeUInt32BE(0xd4c3b2a1, 0);
  return b;
}

/** The GraphQL multipart upload of one file (variable `f`) for the device nicknamed "gw". */
export const UPLOAD_TO_GW = `mutation($f: Upload!) { logUploadCreate(input: { deviceNickname: "gw", file: $f }) { logUpload { id } userErrors { code message } } }`;
