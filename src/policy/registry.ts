import { STAGES, type RuleType } from './types.js';

/**
 * The rule types a policy may name. Built-ins are listed by the composition root; operators'
 * own types (policies/*.mjs) are checked with ruleTypeProblems when the directory is loaded.
 */

const KEBAB_CASE = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;

/**
 * The built-in rule types by name. Throws TypeError when one is malformed or two share a name:
 * that is a mistake in the code, found at start, not something an operator can fix.
 */
export function builtinRuleTypes(types: readonly RuleType[]): Map<string, RuleType> {
  const byName = new Map<string, RuleType>();
  for (const type of types) {
    const problems = ruleTypeProblems(type);
    if (problems.length > 0) throw new TypeError(`Built-in rule type ${String(type?.type)} is malformed: ${problems.join('; ')}`);
    if (byName.has(type.type)) throw new TypeError(`Built-in rule type ${type.type} is listed twice`);
    byName.set(type.type, type);
  }
  return byName;
}

/**
 * What is wrong with `value` as a rule type (see RuleType in types.ts), or [] when nothing is.
 * Custom modules are operators' code, so every field is checked before the type is used.
 */
export function ruleTypeProblems(value: unknown): string[] {
  if (value === null || typeof value !== 'object') return ['must be an object with type, stages, params and create'];
  const type = value as Record<string, unknown>;
  const problems: string[] = [];
  if (typeof type.type !== 'string' || !KEBAB_CASE.test(type.type)) {
    problems.push('type must be a kebab-case name, e.g. "my-rule"');
  }
  const stages = type.stages;
  if (!Array.isArray(stages) || stages.length === 0) {
    problems.push(`stages must be a non-empty list of ${STAGES.join(', ')}`);
  } else {
    const unknown = stages.filter((s) => !(STAGES as readonly unknown[]).includes(s));
    if (unknown.length > 0) problems.push(`stages has unknown stages ${unknown.map((s) => JSON.stringify(s)).join(', ')}; known: ${STAGES.join(', ')}`);
    if (new Set(stages).size !== stages.length) problems.push('stages lists a stage twice');
  }
  const params = type.params as { safeParse?: unknown } | undefined;
  const isSchema = params !== null && typeof params === 'object' && typeof params.safeParse === 'function';
  if (typeof params !== 'function' && !isSchema) {
    problems.push('params must be a zod schema (with safeParse) or a function that returns the params or throws');
  }
  if (typeof type.create !== 'function') problems.push('create must be a function (params, deps) returning { evaluate(ctx) }');
  if (type.description !== undefined && typeof type.description !== 'string') problems.push('description must be a string');
  return problems;
}
