import { parseCidrList } from './cidr';
import { classifyIp, describeScope, parseIp, unmapIp } from './ip';

/** Canonical text of an address (IPv4-mapped IPv6 becomes its IPv4), or null when it is not one. */
export function canonicalIp(text: string): string | null {
  const ip = parseIp(text.trim());
  return ip ? unmapIp(ip).text : null;
}

/** Why an address cannot be a device's public address ("a private (RFC 1918) address"), or null when it can. */
export function publicAddressProblem(canonical: string): string | null {
  const ip = parseIp(canonical);
  if (!ip) return 'not an IP address';
  const scope = classifyIp(ip);
  return scope === 'public' ? null : describeScope(scope);
}

export interface InternalNetworkError {
  index: number;
  code: 'INVALID' | 'TOO_BROAD';
  message: string;
}

/**
 * A device's internal networks: canonical CIDRs (host bits cleared, duplicates dropped). The /8 and /16
 * floors of IOC entries do not apply: a whole corporate /7 may well be "inside".
 */
export function normalizeInternalNetworks(texts: readonly string[]): { cidrs: string[]; errors: InternalNetworkError[] } {
  const parsed = parseCidrList(texts, { minPrefixV4: 1, minPrefixV6: 1, mappedAsIpv4: false });
  if (parsed.ok) return { cidrs: parsed.cidrs.map((c) => c.text), errors: [] };
  return {
    cidrs: [],
    errors: parsed.errors.map((e) => ({ index: e.index, code: e.reason === 'tooBroad' ? 'TOO_BROAD' : 'INVALID', message: e.message })),
  };
}
