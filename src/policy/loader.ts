import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../util/errors.js';
import { importCustomRuleType } from './customRuleType.js';
import { formatKeyPath, parsePolicyFile, toProblems, type Locator, type PolicyFileRule } from './policyFile.js';
import { PolicyLoadError, type PolicyProblem } from './policyLoadError.js';
import { createPolicySet, type PolicyRule, type PolicySet } from './policySet.js';
import { builtinRuleTypes } from './registry.js';
import { compileCondition, conditionsUnknownAt } from './ruleCondition.js';
import type { Rule, RuleDeps, RuleType } from './types.js';

export interface LoadPolicyOptions {
  /** The built-in rule types, as the composition root lists them. */
  builtins: readonly RuleType[];
  /** What every rule instance is created with. */
  deps: RuleDeps;
}

/** Which names in the policy directory are read, and as what. */
export function isPolicyFileName(name: string): boolean {
  // Dot-files are skipped: editors' backups, and the `..data` entries of a Kubernetes ConfigMap mount.
  return !name.startsWith('.') && /\.(ya?ml|mjs)$/.test(name);
}

/**
 * Loads a policy directory whole: `*.mjs` as custom rule types, then `*.yaml` / `*.yml` in name
 * order with their rules in file order, every rule instance built with its type's parameters.
 * A missing or empty directory is an empty policy. Throws one PolicyLoadError listing every
 * problem in every file, so nothing of a broken policy is ever half used.
 */
export async function loadPolicySet(dir: string, options: LoadPolicyOptions): Promise<PolicySet> {
  const builtins = builtinRuleTypes(options.builtins);
  const problems: PolicyProblem[] = [];
  const names = await listPolicyFiles(dir, problems);

  const types = new Map<string, RuleType>(builtins);
  const customFrom = new Map<string, string>();
  for (const name of names.filter((n) => n.endsWith('.mjs'))) {
    const file = join(dir, name);
    const imported = await importCustomRuleType(file);
    if ('problem' in imported) {
      problems.push(imported.problem);
      continue;
    }
    const typeName = imported.type.type;
    if (builtins.has(typeName)) {
      problems.push({ file, reason: `the rule type "${typeName}" is a built-in; give the custom type another name` });
    } else if (customFrom.has(typeName)) {
      problems.push({ file, reason: `the rule type "${typeName}" is already defined by ${customFrom.get(typeName)}` });
    } else {
      types.set(typeName, imported.type);
      customFrom.set(typeName, file);
    }
  }

  const rules: PolicyRule[] = [];
  const nameAt = new Map<string, string>();
  for (const name of names.filter((n) => !n.endsWith('.mjs'))) {
    const file = join(dir, name);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      problems.push({ file, reason: `cannot read the file: ${errorMessage(err)}` });
      continue;
    }
    const parsed = parsePolicyFile(text, file);
    const fileProblems = [...parsed.problems];
    for (const entry of parsed.rules) {
      const built = buildRule(entry, { file, locator: parsed.locator, types, deps: options.deps, nameAt, problems: fileProblems });
      if (built) rules.push(built);
    }
    // In the order an operator reads the file (sort is stable: same-line problems keep theirs).
    problems.push(...fileProblems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0)));
  }

  if (problems.length > 0) throw new PolicyLoadError(dir, problems);
  return createPolicySet(rules, types);
}

interface BuildContext {
  file: string;
  locator: Locator;
  types: ReadonlyMap<string, RuleType>;
  deps: RuleDeps;
  /** Rule names seen so far, across files, with where each was first written. */
  nameAt: Map<string, string>;
  problems: PolicyProblem[];
}

/** Checks one rule against its type and builds it; records problems and returns undefined if any. */
function buildRule(entry: PolicyFileRule, ctx: BuildContext): PolicyRule | undefined {
  const { spec, index } = entry;
  const { file, locator } = ctx;
  const before = ctx.problems.length;
  const problem = (key: PropertyKey[], reason: string) => {
    const path = ['rules', index, ...key];
    ctx.problems.push({ file, line: locator.nodeLine(path), key: formatKeyPath(path), reason });
  };

  const here = `${file}:${entry.line ?? '?'}`;
  const first = ctx.nameAt.get(spec.name);
  if (first !== undefined) problem(['name'], `the name "${spec.name}" is already used at ${first}; rule names must be unique across all policy files`);
  else ctx.nameAt.set(spec.name, here);

  const type = ctx.types.get(spec.type);
  if (!type) {
    problem(['type'], `unknown rule type "${spec.type}"; known types: ${[...ctx.types.keys()].sort().join(', ') || 'none'}`);
    return undefined;
  }
  const stage = spec.stage ?? type.stages[0]!;
  if (!type.stages.includes(stage)) {
    problem(['stage'], `the rule type ${type.type} runs only at ${type.stages.join(', ')}, not at ${stage}`);
  }
  for (const unknown of conditionsUnknownAt(spec.when, stage)) problem(['when', unknown.key], unknown.reason);

  const params = parseParams(type, spec.params, (issues) => {
    for (const issue of issues) ctx.problems.push(...toProblems(issue, ['rules', index, 'params'], file, locator));
  });
  if (ctx.problems.length > before || params === undefined) return undefined;

  let rule: Rule;
  try {
    rule = type.create(params.value, ctx.deps, { name: spec.name, stage });
  } catch (err) {
    problem(['params'], `cannot create the rule: ${errorMessage(err)}`);
    return undefined;
  }
  if (rule === null || typeof rule !== 'object' || typeof rule.evaluate !== 'function') {
    problem(['type'], `the rule type ${type.type} created no rule (create must return { evaluate(ctx) })`);
    return undefined;
  }
  return Object.freeze({
    name: spec.name,
    type: type.type,
    stage,
    mode: spec.mode,
    onError: spec.onError,
    timeoutMs: spec.timeout,
    applies: compileCondition(spec.when),
    rule,
    source: entry.line === undefined ? { file } : { file, line: entry.line },
  });
}

type Issue = { path: PropertyKey[]; message: string };

/** Runs a type's params schema (zod, or a plain function); absent params are `{}` so defaults apply. */
function parseParams(type: RuleType, raw: unknown, report: (issues: Issue[]) => void): { value: unknown } | undefined {
  const input = raw ?? {};
  try {
    if (typeof type.params === 'function') return { value: type.params(input) };
    const result = type.params.safeParse(input);
    if (result.success) return { value: result.data };
    report(result.error.issues);
  } catch (err) {
    report([{ path: [], message: errorMessage(err) }]);
  }
  return undefined;
}

/** The policy file names in `dir`, in name order; none when the directory does not exist. */
async function listPolicyFiles(dir: string, problems: PolicyProblem[]): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    problems.push({ file: dir, reason: `cannot read the policy directory: ${errorMessage(err)}` });
    return [];
  }
  const names: string[] = [];
  // Code-unit order, not locale order: the same on every machine, as `ls` with LC_ALL=C.
  for (const name of entries.filter(isPolicyFileName).sort()) {
    // stat, not lstat: ConfigMap mounts make every file a symlink.
    const info = await stat(join(dir, name)).catch(() => undefined);
    if (info?.isFile()) names.push(name);
  }
  return names;
}
