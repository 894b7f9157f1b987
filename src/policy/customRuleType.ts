import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { errorMessage } from '../util/errors.js';
import type { PolicyProblem } from './policyLoadError.js';
import { ruleTypeProblems } from './registry.js';
import type { RuleType } from './types.js';

/**
 * An operator's own rule type: a JavaScript module next to the policy files whose default
 * export is a RuleType, exactly as a built-in's.
 *
 * ES modules are cached by URL for the life of the process, so the module is imported under a
 * URL that carries a hash of its content: an edited module is imported afresh on reload,
 * while an unchanged one is reused (and does not pile up another copy in memory on every
 * reload). Modules it imports in turn are cached as usual: keep a custom rule in one file.
 */
export async function importCustomRuleType(path: string): Promise<{ type: RuleType } | { problem: PolicyProblem }> {
  let source: Buffer;
  try {
    source = await readFile(path);
  } catch (err) {
    return { problem: { file: path, reason: `cannot read the module: ${errorMessage(err)}` } };
  }
  const version = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const url = `${pathToFileURL(path).href}?v=${version}`;
  let module: { default?: unknown };
  try {
    module = (await import(url)) as { default?: unknown };
  } catch (err) {
    const line = err instanceof SyntaxError ? await syntaxErrorLine(path) : lineInStack(err, url);
    const reason = `cannot import the module: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`;
    return { problem: line === undefined ? { file: path, reason } : { file: path, line, reason } };
  }
  if (module.default === undefined) {
    return { problem: { file: path, reason: 'the module has no default export; export default { type, stages, params, create }' } };
  }
  const problems = ruleTypeProblems(module.default);
  if (problems.length > 0) return { problem: { file: path, reason: `the default export is not a rule type: ${problems.join('; ')}` } };
  return { type: module.default as RuleType };
}

/**
 * Node does not say where a syntax error in an ES module is (the message is only "Unexpected
 * token"); `node --check` does, on its first line ("/path/rule.mjs:3"). Asked only when an
 * import has already failed, so a healthy load never spawns anything.
 */
function syntaxErrorLine(path: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--check', path], { timeout: 10_000 }, (_err, _stdout, stderr) => {
      const match = /:(\d+)\r?\n/.exec(String(stderr));
      resolve(match ? Number(match[1]) : undefined);
    });
  });
}

/** The line of the module's own frame in an error thrown while it ran at import. */
function lineInStack(err: unknown, url: string): number | undefined {
  const stack = err instanceof Error ? (err.stack ?? '') : '';
  const at = stack.indexOf(`${url}:`);
  if (at < 0) return undefined;
  const match = /^:(\d+)/.exec(stack.slice(at + url.length));
  return match ? Number(match[1]) : undefined;
}
