/** Machine-readable reasons for expected failures; clients switch on these, people read `message`. */
export enum UserErrorCode {
  /** A value is malformed or out of range. */
  INVALID = 'INVALID',
  /** A required value is missing. */
  REQUIRED = 'REQUIRED',
  /** The referenced object does not exist in the caller's account. */
  NOT_FOUND = 'NOT_FOUND',
  /** A value that must be unique is already used. */
  TAKEN = 'TAKEN',
  /** The object is still referenced and cannot be removed. */
  IN_USE = 'IN_USE',
  /** The value is longer than allowed. */
  TOO_LONG = 'TOO_LONG',
  /** The network is broader than allowed. */
  TOO_BROAD = 'TOO_BROAD',
  /** The address is not a public address. */
  NOT_PUBLIC = 'NOT_PUBLIC',
  /** The operation does not apply to the object in its current state. */
  INVALID_STATE = 'INVALID_STATE',
  /** The file is a binary capture (pcap/pcapng); the text output of tcpdump is expected. */
  UNSUPPORTED_FORMAT = 'UNSUPPORTED_FORMAT',
  /** The file is not text. */
  NOT_TEXT = 'NOT_TEXT',
  /** The file is empty. */
  EMPTY = 'EMPTY',
  /** The MD5 the client sent does not match what arrived. */
  CHECKSUM_MISMATCH = 'CHECKSUM_MISMATCH',
  /** The size the client sent does not match what arrived. */
  SIZE_MISMATCH = 'SIZE_MISMATCH',
  /** Asked again too soon; the message says when to retry. */
  RATE_LIMITED = 'RATE_LIMITED',
}

/** An expected failure, returned as data in a mutation payload. `field` is the input path, e.g. `["input","nickname"]`. */
export interface UserErrorData {
  code: UserErrorCode;
  field: string[] | null;
  message: string;
}

export function userError(code: UserErrorCode, field: string[] | null, message: string): UserErrorData {
  return { code, field, message };
}

/** What a service returns from a mutation: the object, or the reasons it could not be made. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; errors: UserErrorData[] };

export const success = <T>(value: T): Outcome<T> => ({ ok: true, value });
export const failure = <T = never>(...errors: UserErrorData[]): Outcome<T> => ({ ok: false, errors });
