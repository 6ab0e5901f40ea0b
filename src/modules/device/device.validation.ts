import { failure, Outcome, success, userError, UserErrorCode, UserErrorData } from '../../common/errors/user-error';
import { normalizeFqdn } from '../../common/net/fqdn';
import { canonicalIp, normalizeInternalNetworks, publicAddressProblem } from '../../common/net/device-address';
import { IpType } from './device.enums';

/** Device input as the service sees it: `undefined` leaves a field unchanged on update, `null` clears it. */
export interface DeviceFields {
  nickname?: string | null;
  ipType?: IpType | null;
  ipAddress?: string | null;
  domainName?: string | null;
  /** Decoded policy ID; null when the given ID is not a policy ID at all. */
  policyId?: number | null;
  note?: string | null;
  internalNetworks?: string[] | null;
  identifyByUploaderIp?: boolean | null;
}

export interface DeviceValues {
  nickname: string;
  ipType: IpType;
  ipAddress: string | null;
  domainName: string | null;
  policyId: number;
  note: string | null;
  internalNetworks: string[];
  identifyByUploaderIp: boolean;
}

export const MAX_NOTE = 1000;
export const MAX_NICKNAME = 64;
export const MAX_INTERNAL_NETWORKS = 256;

/**
 * Every rule of the original product's device form, on the merged result of `input` over `current`
 * (null when creating). Returns the canonical values (trimmed nickname, canonical IP, lower-case FQDN,
 * normalised CIDRs) or every problem at once, each naming its input field.
 */
export function validateDeviceFields(input: DeviceFields, current: DeviceValues | null): Outcome<DeviceValues> {
  const errors: UserErrorData[] = [];
  const pick = <K extends keyof DeviceValues>(key: K, fallback: DeviceValues[K]): DeviceValues[K] | null | undefined => {
    const given = input[key as keyof DeviceFields] as DeviceValues[K] | null | undefined;
    return given === undefined ? (current ? current[key] : fallback) : given;
  };
  const field = (name: string) => ['input', name];

  const nickname = (pick('nickname', '') ?? '').trim();
  if (nickname.length === 0) errors.push(userError(UserErrorCode.REQUIRED, field('nickname'), 'A device needs a nickname (1-64 characters).'));
  else if (nickname.length > MAX_NICKNAME)
    errors.push(userError(UserErrorCode.TOO_LONG, field('nickname'), `Nicknames are at most ${MAX_NICKNAME} characters.`));

  const ipType = pick('ipType', IpType.STATIC) ?? IpType.STATIC;
  // Switching type drops the other type's field unless it is given again.
  const typeChanged = current != null && input.ipType != null && input.ipType !== current.ipType;
  let ipAddress: string | null = input.ipAddress !== undefined ? input.ipAddress : typeChanged ? null : (current?.ipAddress ?? null);
  let domainName: string | null = input.domainName !== undefined ? input.domainName : typeChanged ? null : (current?.domainName ?? null);
  if (ipType === IpType.STATIC) {
    if (domainName)
      errors.push(userError(UserErrorCode.INVALID, field('domainName'), 'domainName is for DYNAMIC devices; a STATIC device is identified by ipAddress.'));
    domainName = null;
    if (ipAddress == null || ipAddress.trim() === '') {
      errors.push(userError(UserErrorCode.REQUIRED, field('ipAddress'), 'A STATIC device needs its public IP address.'));
    } else {
      const ip = canonicalIp(ipAddress.trim());
      if (!ip) {
        errors.push(userError(UserErrorCode.INVALID, field('ipAddress'), `"${ipAddress.trim().slice(0, 60)}" is not an IPv4 or IPv6 address.`));
      } else {
        const problem = publicAddressProblem(ip);
        if (problem) errors.push(userError(UserErrorCode.NOT_PUBLIC, field('ipAddress'), `${ip} is ${problem}; a STATIC device needs a public address.`));
        ipAddress = ip;
      }
    }
  } else {
    if (ipAddress)
      errors.push(userError(UserErrorCode.INVALID, field('ipAddress'), 'ipAddress is for STATIC devices; a DYNAMIC device is identified by domainName.'));
    ipAddress = null;
    if (domainName == null || domainName.trim() === '') {
      errors.push(userError(UserErrorCode.REQUIRED, field('domainName'), 'A DYNAMIC device needs a DNS name (A/AAAA record) that points at it.'));
    } else {
      const fqdn = normalizeFqdn(domainName);
      if (!fqdn.ok)
        errors.push(userError(UserErrorCode.INVALID, field('domainName'), `"${domainName.trim().slice(0, 60)}" is not a valid DNS name: it ${fqdn.reason}.`));
      else domainName = fqdn.name;
    }
  }

  const policyId = input.policyId !== undefined ? input.policyId : (current?.policyId ?? null);
  if (policyId == null) errors.push(userError(UserErrorCode.NOT_FOUND, field('policy'), 'No policy with this ID.'));

  let note = pick('note', null) ?? null;
  note = note?.trim() || null;
  if (note && note.length > MAX_NOTE) errors.push(userError(UserErrorCode.TOO_LONG, field('note'), `Notes are at most ${MAX_NOTE} characters.`));

  let internalNetworks = pick('internalNetworks', []) ?? [];
  if (internalNetworks.length > MAX_INTERNAL_NETWORKS) {
    errors.push(userError(UserErrorCode.INVALID, field('internalNetworks'), `At most ${MAX_INTERNAL_NETWORKS} internal networks.`));
  } else {
    const normalized = normalizeInternalNetworks(internalNetworks);
    for (const e of normalized.errors) {
      errors.push(
        userError(e.code === 'TOO_BROAD' ? UserErrorCode.TOO_BROAD : UserErrorCode.INVALID, ['input', 'internalNetworks', String(e.index)], e.message),
      );
    }
    internalNetworks = normalized.cidrs;
  }

  const identifyByUploaderIp = pick('identifyByUploaderIp', false) ?? false;

  if (errors.length || policyId == null) return failure(...errors);
  return success({ nickname, ipType, ipAddress, domainName, policyId, note, internalNetworks, identifyByUploaderIp });
}
