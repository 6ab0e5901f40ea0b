import { Connection } from '../../common/pagination/connection';
import { createPayload } from '../../common/graphql/user-error.type';
import { Policy } from './policy.entity';

export const PolicyConnection = Connection(Policy, 'Policy', 'policy', 'policies');
export const PolicyCreatePayload = createPayload('PolicyCreatePayload', 'policy', () => Policy, 'The new policy.');
export const PolicyUpdatePayload = createPayload('PolicyUpdatePayload', 'policy', () => Policy, 'The policy as changed.');
export const PolicyDeletePayload = createPayload('PolicyDeletePayload', 'policy', () => Policy, 'The deleted policy, as it was.');
