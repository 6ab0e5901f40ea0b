/** The object types that have global IDs. Adding one here is what makes `node(id)` able to return it. */
export type NodeTypeName =
  | 'Account'
  | 'ApiKey'
  | 'Device'
  | 'Policy'
  | 'IocList'
  | 'Ioc'
  | 'IocDomain'
  | 'LogUpload'
  | 'FlowHit'
  | 'IocSource'
  | 'AlertRule'
  | 'AlertDestination'
  | 'Alert'
  | 'AlertDelivery'
  | 'RetroHunt'
  | 'DnsHit';

const PREFIX = 'pd1:';

/** Opaque, type-tagged: base64url of `pd1:Type:id`. Clients must treat it as a string. */
export function toGlobalId(type: NodeTypeName, id: number): string {
  return Buffer.from(`${PREFIX}${type}:${id}`, 'utf8').toString('base64url');
}

export interface DecodedGlobalId {
  type: NodeTypeName;
  id: number;
}

/** Returns null for anything that is not an ID we issued: malformed IDs behave like missing ones. */
export function fromGlobalId(globalId: string): DecodedGlobalId | null {
  if (typeof globalId !== 'string' || globalId.length === 0 || globalId.length > 64 || !/^[A-Za-z0-9_-]+$/.test(globalId)) {
    return null;
  }
  const text = Buffer.from(globalId, 'base64url').toString('utf8');
  const m = /^pd1:([A-Za-z]+):([1-9]\d{0,15})$/.exec(text);
  if (!m) return null;
  const id = Number(m[2]);
  if (!Number.isSafeInteger(id)) return null;
  return { type: m[1] as NodeTypeName, id };
}

/** Decodes an ID that must name a given type; any other type, or garbage, is null (i.e. "not found"). */
export function idOfType(globalId: string, type: NodeTypeName): number | null {
  const decoded = fromGlobalId(globalId);
  return decoded && decoded.type === type ? decoded.id : null;
}
