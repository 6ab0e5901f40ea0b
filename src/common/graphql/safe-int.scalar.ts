import { GraphQLScalarType } from 'graphql';
import { GraphQLSafeInt } from 'graphql-scalars';

/**
 * The one type of every quantity that can pass GraphQL's Int (32 bits): byte sizes and totals, and packet
 * counts, which reports sum over whole windows. Counts of rows (hits, hosts, lines, connections) stay Int:
 * their tables' INT keys bound them below 2^31.
 * graphql-scalars' SafeInt under its own name (codegen tools map it), described for this API: a JSON number,
 * exact in every client's 64-bit integer and in JavaScript's number; no string to parse (BigInt, Long), no
 * fractions (Float). Its serializer accepts the decimal strings mysql2 returns for SUM and BIGINT, and
 * refuses a value beyond 2^53-1 instead of sending it rounded.
 */
export const SafeInt = new GraphQLScalarType({
  ...GraphQLSafeInt.toConfig(),
  description:
    "A whole number up to 2^53-1 (9,007,199,254,740,991) in magnitude, sent as a JSON number; never negative in this API. The type of every byte size or total and every packet count, which can pass Int's 2,147,483,647: read it as a 64-bit integer (Long, Int64); a JavaScript number holds it exactly.",
});
