import { AuthChecker } from 'type-graphql';
import { forbidden, unauthenticated } from '../../common/errors/graphql-errors';
import type { RequestContext } from '../../app/context';
import { Role } from '../account/account.enums';
import { Caller } from './auth.types';

/** `@Authorized(roles)`: no key is UNAUTHENTICATED, a role outside the list is FORBIDDEN. */
export const authChecker: AuthChecker<RequestContext, Role> = ({ context }, roles) => {
  requireCaller(context);
  if (roles.length > 0 && !roles.includes(context.caller!.role)) throw forbidden();
  return true;
};

export function requireCaller(context: RequestContext): Caller {
  if (!context.caller) throw unauthenticated();
  return context.caller;
}
