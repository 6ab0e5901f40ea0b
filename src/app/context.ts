import crypto from 'node:crypto';
import { Caller } from '../modules/auth/auth.types';
import { createLoaders, Loaders } from './loaders';
import type { RequestLog } from './request-log';
import { Services } from './services';

/** What every resolver gets: who is calling, the services, and this request's loaders. */
export interface RequestContext {
  requestId: string;
  caller: Caller | null;
  services: Services;
  loaders: Loaders;
  /** The HTTP request's log fields (absent outside HTTP): the caller and operation are added to its line. */
  requestLog?: RequestLog;
}

/** Reads `Authorization: Bearer <key>`; returns null when absent. Malformed or unknown keys are also null. */
export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : null;
}

export async function createRequestContext(services: Services, authorization: string | undefined, requestLog?: RequestLog): Promise<RequestContext> {
  const token = bearerToken(authorization);
  const caller = token ? await services.accounts.authenticate(token) : null;
  if (requestLog && caller) {
    requestLog.accountId = caller.accountId;
    requestLog.apiKeyId = caller.apiKeyId;
  }
  return { requestId: requestLog?.requestId ?? crypto.randomUUID(), caller, services, loaders: createLoaders(services, caller), requestLog };
}
