import { Role } from '../account/account.enums';

/** Who is calling: resolved from the API key once per request. */
export interface Caller {
  accountId: number;
  apiKeyId: number;
  role: Role;
  /** The device an UPLOADER key is bound to: an upload that names none goes to it. */
  deviceId: number | null;
}

export const READ_ROLES: Role[] = [Role.ADMIN, Role.ANALYST];
export const WRITE_ROLES: Role[] = [Role.ADMIN];
export const UPLOAD_ROLES: Role[] = [Role.ADMIN, Role.UPLOADER];
