import { Role } from '../account/account.enums';

/** Who is calling: resolved from the API key once per request. */
export interface Caller {
  accountId: number;
  apiKeyId: number;
  role: Role;
}

export const READ_ROLES: Role[] = [Role.ADMIN, Role.ANALYST];
export const WRITE_ROLES: Role[] = [Role.ADMIN];
export const UPLOAD_ROLES: Role[] = [Role.ADMIN, Role.UPLOADER];
