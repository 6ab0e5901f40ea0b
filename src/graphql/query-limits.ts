import type { ApolloServerPlugin } from '@apollo/server';
import type { NextFunction, Request, Response } from 'express';
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import { MaxTokensParserWLexer } from '@escape.tech/graphql-armor-max-tokens';
import { DocumentNode, getVariableValues, GraphQLError, GraphQLSchema, OperationDefinitionNode, validate } from 'graphql';
import { ComplexityEstimator, getComplexity } from 'graphql-query-complexity';
import { DEFAULT_PAGE_SIZE } from '../common/pagination/connection';
import type { QueryLimits } from '../config/config';

export function queryTooComplex(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'QUERY_TOO_COMPLEX', http: { status: 400 } } });
}

/** graphql-armor prefixes its messages as if they were syntax errors; ours say what was exceeded. */
const clean = (message: string) => message.replace(/^Syntax Error: /, '');

/**
 * Every field costs 1; the selection under a paged field (one with a `first` argument) costs `first` times
 * over (the default page size when `first` is not given), so `first: 100` nested in `first: 100` is priced
 * as the 10,000 rows it can fetch. graphql-armor's own cost rule counts each field once, whatever `first` is.
 */
export const pagedCostEstimator: ComplexityEstimator = ({ field, args, childComplexity }) => {
  if (!field.args.some((a) => a.name === 'first')) return 1 + childComplexity;
  const first = typeof args.first === 'number' ? Math.max(0, args.first) : DEFAULT_PAGE_SIZE;
  return 1 + first * childComplexity;
};

/**
 * Bounds one GraphQL operation before any resolver (and so any SQL) runs: depth, aliases and directives
 * (graphql-armor's rules) and the cost, with `first` and the variables known. A refusal is QUERY_TOO_COMPLEX
 * with HTTP 400 and says which limit, and its value, was exceeded.
 *
 * graphql-armor's own Apollo integration is not used: its token check throws from a hook that Apollo answers
 * with a 500, and Apollo rewrites validation-rule errors to GRAPHQL_VALIDATION_FAILED; didResolveOperation is
 * the hook whose errors Apollo answers as they are.
 */
/** Why the document's shape (depth, aliases, directives) is over the limits; empty when it is not. Shared by HTTP and the subscriptions' socket. */
export function shapeRefusals(schema: GraphQLSchema, document: DocumentNode, limits: QueryLimits): string[] {
  const refusals: string[] = [];
  const onReject = [(_ctx: unknown, err: GraphQLError) => void refusals.push(clean(err.message))];
  const common = { exposeLimits: true, propagateOnRejection: false, onReject };
  validate(schema, document, [
    maxDepthRule({ n: limits.depth, flattenFragments: true, ignoreIntrospection: true, ...common }),
    maxAliasesRule({ n: limits.aliases, ...common }),
    maxDirectivesRule({ n: limits.directives, ...common }),
  ]);
  return refusals;
}

/** Costs kept per document: its operations with the variables they were asked with (a client's few pages). */
const COSTS_PER_DOCUMENT = 32;
/** Variables longer than this as JSON are priced every time rather than kept. */
const COST_KEY_MAX = 2_000;

export function queryLimitsPlugin(limits: QueryLimits): ApolloServerPlugin {
  // Apollo parses each distinct query text once and hands every request of it the same DocumentNode: the shape
  // checks and the cost walk the whole document, and a client asking the same report over and over paid for both
  // on every request, on the event loop. Keyed weakly: a document Apollo drops from its cache is dropped here too.
  const shapes = new WeakMap<DocumentNode, string[]>();
  const costs = new WeakMap<DocumentNode, Map<string, number>>();
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, schema, operation, request }) {
          let refusals = shapes.get(document);
          if (!refusals) shapes.set(document, (refusals = shapeRefusals(schema, document, limits)));
          if (refusals.length > 0) throw queryTooComplex(refusals.join(' '));

          // No operation to run (several without operationName): the executor refuses it before any resolver.
          if (!operation) return;
          const variables = request.variables ?? {};
          const key = `${operation.name?.value ?? ''}\u0000${JSON.stringify(variables)}`;
          let known = costs.get(document);
          let cost = known?.get(key);
          if (cost === undefined) {
            const priced = operationCost(schema, document, operation, variables);
            // Bad variables are the executor's to report (BAD_USER_INPUT); it stops before any resolver.
            if (priced === null) return;
            cost = priced;
            if (key.length <= COST_KEY_MAX) {
              if (!known) costs.set(document, (known = new Map()));
              if (known.size >= COSTS_PER_DOCUMENT) known.delete(known.keys().next().value as string);
              known.set(key, cost);
            }
          }
          if (cost > limits.cost) throw costTooHigh(limits.cost, cost);
        },
      };
    },
  };
}

/** Query texts remembered as under the token limit, and the longest remembered. */
const PASSED_TEXTS = 256;
const PASSED_TEXT_MAX = 64 * 1024;

/**
 * The token limit, checked before the context (and its key lookup) is built and before Apollo parses: a
 * document over it is not parsed twice, nor validated. graphql-armor's lexer stops counting at the limit.
 */
export function tokenLimit(limit: number) {
  // Texts that passed, most recent last: clients send the same few documents again and again, and lexing each
  // again cost the event loop as much as a small report's own work.
  const passed = new Set<string>();
  return (req: Request, res: Response, next: NextFunction): void => {
    const body = req.body as { query?: unknown } | undefined;
    const query = typeof body?.query === 'string' ? body.query : typeof req.query?.query === 'string' ? req.query.query : null;
    if (query === null) return next();
    if (passed.has(query)) return next();
    const refusal = tokenRefusal(query, limit);
    if (!refusal) {
      if (query.length <= PASSED_TEXT_MAX) {
        if (passed.size >= PASSED_TEXTS) passed.delete(passed.values().next().value as string);
        passed.add(query);
      }
      return next();
    }
    res.status(400).json({ errors: [{ message: refusal, extensions: { code: 'QUERY_TOO_COMPLEX' } }] });
  };
}

/**
 * Why a document's text is over the token limit, or null when it is not (or does not lex: other syntax errors are
 * the parser's to report). graphql-armor's lexer stops counting at the limit, before any parse. Shared by HTTP and
 * the subscriptions' socket.
 */
export function tokenRefusal(query: string, limit: number): string | null {
  let refusal: GraphQLError | null = null;
  try {
    new MaxTokensParserWLexer(query, { n: limit, onReject: [(_ctx, err) => (refusal = err)], propagateOnRejection: true }).parseDocument();
  } catch {
    // Other syntax errors are the parser's to report.
  }
  return refusal ? `${clean((refusal as GraphQLError).message)} Send a smaller document.` : null;
}

/**
 * The cost of an operation with its variables (pagedCostEstimator), or the refusal when it cannot be estimated or is
 * over `limit`; null when it is within it. Variables the operation refuses are the executor's to report: null.
 */
export function costRefusal(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown>,
  limit: number,
): GraphQLError | null {
  try {
    const cost = operationCost(schema, document, operation, variables);
    return cost !== null && cost > limit ? costTooHigh(limit, cost) : null;
  } catch (err) {
    return err as GraphQLError;
  }
}

/** The operation's cost with its variables (pagedCostEstimator); null when the variables are refused; throws QUERY_TOO_COMPLEX when it cannot be estimated. */
function operationCost(schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode, variables: Record<string, unknown>): number | null {
  if (getVariableValues(schema, operation.variableDefinitions ?? [], variables).errors) return null;
  try {
    return getComplexity({ schema, query: document, operationName: operation.name?.value, variables, estimators: [pagedCostEstimator] });
  } catch {
    throw queryTooComplex("The query's cost could not be estimated (too many fields or fragments).");
  }
}

function costTooHigh(limit: number, cost: number): GraphQLError {
  return queryTooComplex(`Query cost limit of ${limit} exceeded, found ${cost}: ask for smaller pages (first) or fewer nested lists.`);
}
