import { lookup } from 'node:dns/promises';
import { Cidr, cidrContains, classifyIp, guardTarget, IpScope, parseCidr, parseIp } from '../../../common/net';

/**
 * Where alert destinations may connect (SSRF): a destination that resolves to a loopback, link-local or cloud
 * metadata address, or one that is not an address of any host, is refused unless a configured CIDR
 * (ALERT_DESTINATION_ALLOW) contains it. Private (RFC 1918, unique-local) addresses are allowed: syslog and SMTP
 * relays usually live there. An IPv6 form that carries an IPv4 address (NAT64, 6to4, Teredo, IPv4-mapped...) is
 * judged as that IPv4 address (common/net guardTarget). The check runs on every connection, on the addresses the name
 * resolves to then, and the connection goes to the address checked: a name that later resolves elsewhere (DNS
 * rebinding) gains nothing.
 */
const REFUSED_SCOPES: ReadonlySet<IpScope> = new Set(['loopback', 'linkLocal', 'unspecified', 'thisNetwork', 'multicast', 'broadcast', 'reserved']);

/** Cloud metadata services outside link-local (AWS IPv6, Alibaba Cloud, Oracle Cloud's legacy one). */
const METADATA: readonly Cidr[] = ['fd00:ec2::254/128', '100.100.100.200/32', '192.0.0.192/32'].map(cidr);

function cidr(text: string): Cidr {
  const r = parseCidr(text, { minPrefixV4: 0, minPrefixV6: 0 });
  if (!r.ok) throw new Error(`bad CIDR ${text}`);
  return r.cidr;
}

export class AddressRefused extends Error {}

export class AddressGuard {
  private readonly allowed: readonly Cidr[];

  constructor(
    allow: readonly string[],
    private readonly resolve: (host: string) => Promise<string[]> = async (host) => (await lookup(host, { all: true })).map((a) => a.address),
  ) {
    this.allowed = allow.map(cidr);
  }

  /** Why the address may not be connected to; null when it may. */
  problem(address: string): string | null {
    const parsed = parseIp(address);
    if (!parsed) return `${address} is not an IP address`;
    if (this.allowed.some((c) => cidrContains(c, parsed))) return null;
    const target = guardTarget(parsed);
    if (!target.ok) return target.why;
    const { ip, name } = target;
    if (this.allowed.some((c) => cidrContains(c, ip))) return null;
    if (METADATA.some((c) => cidrContains(c, ip))) return `${name} is a cloud metadata address`;
    const scope = classifyIp(ip);
    if (REFUSED_SCOPES.has(scope)) return `${name} is a ${scope} address`;
    return null;
  }

  /** The address to connect to for host (a name or a literal), every resolved address checked; throws AddressRefused. */
  async address(host: string): Promise<string> {
    const literal = parseIp(host.replace(/^\[|\]$/g, ''));
    const addresses = literal ? [host.replace(/^\[|\]$/g, '')] : await this.resolve(host);
    if (addresses.length === 0) throw new AddressRefused(`${host} does not resolve`);
    for (const a of addresses) {
      const why = this.problem(a);
      if (why) throw new AddressRefused(`refused: ${host} resolves to ${why} (ALERT_DESTINATION_ALLOW can allow it)`);
    }
    return addresses[0];
  }
}
