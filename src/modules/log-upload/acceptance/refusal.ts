import { UserErrorCode } from '../../../common/errors/user-error';

/**
 * Every reason an upload is refused with nothing stored, whichever entrance it came through. The codes that
 * are UserErrorCodes are answered as `userErrors` by GraphQL; the others are the request's own failure.
 * Each entrance maps every code to its HTTP status in a Record over this type: a new code that one of them
 * does not map fails to compile.
 */
export type UploadRefusalCode =
  | UserErrorCode.INVALID
  | UserErrorCode.REQUIRED
  | UserErrorCode.NOT_FOUND
  | UserErrorCode.UNSUPPORTED_FORMAT
  | UserErrorCode.NOT_TEXT
  | UserErrorCode.EMPTY
  | UserErrorCode.CHECKSUM_MISMATCH
  | UserErrorCode.SIZE_MISMATCH
  /** Over MAX_UPLOAD_BYTES (as sent, or once inflated). */
  | 'PAYLOAD_TOO_LARGE'
  /** No API key, and no device identified by the uploader's address. */
  | 'UNAUTHENTICATED'
  /** The key's role may not upload. */
  | 'FORBIDDEN'
  /** Several devices allow identification by the uploader's address. */
  | 'AMBIGUOUS'
  /** The database is full or unreachable: DATABASE_FAILURES' codes (database-failure.ts). */
  | 'INSUFFICIENT_STORAGE'
  | 'SERVICE_UNAVAILABLE';

export interface UploadRefusal {
  code: UploadRefusalCode;
  /** For people; the same whichever entrance answers it. */
  message: string;
  /** The input it is about, as GraphQL names it (`["input", "md5"]`); null when it is about no one field. */
  field: string[] | null;
}

const USER_ERROR_CODES = new Set<string>(Object.values(UserErrorCode));

/** True when GraphQL answers the refusal as a userError (data), false when it fails the request. */
export function isUserErrorRefusal(refusal: UploadRefusal): refusal is UploadRefusal & { code: UserErrorCode } {
  return USER_ERROR_CODES.has(refusal.code);
}

export const refusal = (code: UploadRefusalCode, field: string[] | null, message: string): UploadRefusal => ({ code, field, message });
