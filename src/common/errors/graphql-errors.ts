import { GraphQLError } from 'graphql';

/** The only errors thrown on purpose: who you are and what you may do. Everything else is data or a masked bug. */
/** What a request without a (valid) key is told; the form post's refusal starts with it too. */
export const API_KEY_REQUIRED = 'A valid API key is required: send "Authorization: Bearer <key>".';

export function unauthenticated(message = API_KEY_REQUIRED): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } } });
}

export function forbidden(message = "Your API key's role may not do this."): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'FORBIDDEN' } });
}

export function badUserInput(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } });
}
