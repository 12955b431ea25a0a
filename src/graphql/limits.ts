import {
  GraphQLError,
  Kind,
  NoSchemaIntrospectionCustomRule,
  getOperationAST,
  getVariableValues,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { getComplexity, type ComplexityEstimator } from 'graphql-query-complexity';
import { AppError } from './errors.ts';

/**
 * What one GraphQL document may ask for. Everything here is checked before execution starts — before the request's
 * transaction is opened — so a refused operation runs no resolver and sends no SQL.
 */
export const LIMITS = {
  /** Nesting of selection sets (fragments flattened; `__schema` introspection ignored). */
  maxDepth: 12,
  /** Aliased fields in the operation, fragments included. */
  maxAliases: 30,
  /** Lexical tokens of the document (graphql-js aborts parsing past it). */
  maxTokens: 5000,
  /** Estimated cost: 1 per field, the selection under a paginated field multiplied by its `first`/`last`. */
  maxCost: 20_000,
  /** Largest `first`/`last` a paginated field accepts. */
  maxPageSize: 100,
  /** Page size assumed for the cost when neither `first` nor `last` is given (the connections' default). */
  defaultPageSize: 20,
} as const;

const withoutArmorPrefix = (e: GraphQLError) => e.message.replace(/^Syntax Error: /, '');

/** Reported as an ordinary validation error (Apollo answers GRAPHQL_VALIDATION_FAILED, HTTP 400). */
function reportTo(limit: string) {
  return (context: ValidationContext | null, error: GraphQLError) => {
    context?.reportError(new GraphQLError(withoutArmorPrefix(error), { extensions: { limit } }));
  };
}

/** Only one operation per document: a document is one request, never a bundle to pick from. */
export const SingleOperationRule: ValidationRule = (context) => ({
  Document(node) {
    const operations = node.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
    if (operations.length > 1) {
      context.reportError(
        new GraphQLError(`A document may contain only one operation (found ${operations.length}).`, { nodes: operations, extensions: { limit: 'operations' } }),
      );
    }
  },
});

/** The static limits, as validation rules (they need no variables). */
export const limitRules: ValidationRule[] = [
  SingleOperationRule,
  maxDepthRule({ n: LIMITS.maxDepth, flattenFragments: true, ignoreIntrospection: true, propagateOnRejection: false, onReject: [reportTo('depth')] }),
  maxAliasesRule({ n: LIMITS.maxAliases, propagateOnRejection: false, onReject: [reportTo('aliases')] }),
];

export const parseOptions = { maxTokens: LIMITS.maxTokens } as const;

const costExceeded = (actual: number | null) =>
  new GraphQLError(
    actual === null
      ? `The operation is too large to estimate (maximum cost ${LIMITS.maxCost}).`
      : `The operation costs ${actual}, more than the maximum of ${LIMITS.maxCost}.`,
    { extensions: { code: 'GRAPHQL_VALIDATION_FAILED', limit: 'cost', maxCost: LIMITS.maxCost, ...(actual === null ? {} : { cost: actual }), http: { status: 400 } } },
  );

/**
 * The limits that depend on the variables: page sizes (`first`/`last` in 0…100, BAD_USER_INPUT naming the argument)
 * and the cost. Throws the refusal; returns the cost otherwise. Variables must already coerce (see variableErrors).
 */
export function assertWithinLimits(schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode, variables: Record<string, unknown> | undefined) {
  let oversized: { arg: 'first' | 'last'; value: number; field: string } | undefined;
  const estimator: ComplexityEstimator = ({ field, args, childComplexity }) => {
    const paginated = field.args.some((a) => a.name === 'first' || a.name === 'last');
    if (!paginated) return 1 + childComplexity;
    for (const arg of ['first', 'last'] as const) {
      const value = args[arg];
      if (typeof value === 'number' && (value < 0 || value > LIMITS.maxPageSize)) oversized ??= { arg, value, field: field.name };
    }
    const size = Math.min((args.first as number | undefined) ?? (args.last as number | undefined) ?? LIMITS.defaultPageSize, LIMITS.maxPageSize);
    return 1 + Math.max(size, 1) * childComplexity;
  };
  let cost: number;
  try {
    cost = getComplexity({ schema, query: document, variables: variables ?? {}, operationName: operation.name?.value, estimators: [estimator] });
  } catch (e) {
    // graphql-query-complexity gives up on documents of more than 10,000 field nodes.
    if (e instanceof GraphQLError && /maximum allowed number of nodes/.test(e.message)) throw costExceeded(null);
    throw e;
  }
  if (oversized) {
    throw new AppError('BAD_USER_INPUT', `\`${oversized.arg}\` must be between 0 and ${LIMITS.maxPageSize} (got ${oversized.value} on \`${oversized.field}\`)`, {
      field: oversized.arg,
      http: { status: 400 },
    });
  }
  if (cost > LIMITS.maxCost) throw costExceeded(cost);
  return cost;
}

/** Variable coercion problems (execution reports them itself, before any resolver runs). */
export function variableErrors(schema: GraphQLSchema, operation: OperationDefinitionNode, variables: Record<string, unknown> | undefined) {
  return getVariableValues(schema, operation.variableDefinitions ?? [], variables ?? {}).errors ?? [];
}

/**
 * graphql-ws `onSubscribe`: the same checks as over HTTP (tokens, validation with the limit rules, page sizes and
 * cost; introspection off in production), answered as GraphQL errors on the operation, the socket kept open.
 */
export function checkSocketOperation(schema: GraphQLSchema, production: boolean, payload: { query: string; operationName?: string | null; variables?: Record<string, unknown> | null }) {
  let document: DocumentNode;
  try {
    document = parse(payload.query, parseOptions);
  } catch (e) {
    if (e instanceof GraphQLError) return [new GraphQLError(e.message, { extensions: { code: 'GRAPHQL_PARSE_FAILED' } })];
    throw e;
  }
  const rules = [...specifiedRules, ...limitRules, ...(production ? [NoSchemaIntrospectionCustomRule] : [])];
  const invalid = validate(schema, document, rules);
  if (invalid.length) return invalid.map((e) => new GraphQLError(e.message, { nodes: e.nodes, extensions: { ...e.extensions, code: 'GRAPHQL_VALIDATION_FAILED' } }));
  const operation = getOperationAST(document, payload.operationName ?? undefined);
  const variables = payload.variables ?? undefined;
  if (operation && variableErrors(schema, operation, variables).length === 0) {
    try {
      assertWithinLimits(schema, document, operation, variables);
    } catch (e) {
      if (e instanceof GraphQLError) return [e];
      throw e;
    }
  }
  return { schema, document, operationName: payload.operationName ?? undefined, variableValues: variables };
}
