import { isMap, isNode, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { parseDuration } from '../util/units.js';
import { domainPatternProblem } from './match/domains.js';
import { networkProblem } from './match/networks.js';
import type { PolicyProblem } from './policyLoadError.js';
import { STAGES } from './types.js';

/**
 * One policy file (`policies/*.yaml`): a list of rule instances, each a rule type with its
 * parameters, the stage it runs at, when it applies and how it acts.
 *
 * ```yaml
 * rules:
 *   - name: staff-senders          # unique across all files; appears in logs and metrics
 *     type: sender-identity
 *     stage: mail                  # where the type allows several; default: its first
 *     params: { ... }              # checked by the type's own schema
 *     when: { groups: [staff], clientCidrs: [10.0.0.0/8, "2001:db8::/32"] }
 *     mode: monitor                # log and count what it would do, change nothing
 *     onError: continue            # on a fault (throw, timeout): go on instead of 451
 *     timeout: 2s
 * ```
 */

/** Rule names go into log lines, metric labels and replies, so they stay plain. */
const RULE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const duration = z.union([z.string(), z.number()]).transform((value, ctx) => {
  try {
    const ms = parseDuration(value);
    if (ms > 0) return ms;
    ctx.addIssue({ code: 'custom', message: 'must be longer than 0ms' });
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
  return z.NEVER;
});

const checked = (problemOf: (value: string) => string | undefined) =>
  z.string().superRefine((value, ctx) => {
    const problem = problemOf(value);
    // The problem text names the value itself.
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** A non-empty list: an empty one would match nothing and silently switch the rule off. */
const list = <T extends z.ZodType>(item: T) =>
  z.array(item).min(1, 'an empty list matches nothing; leave the key out to not filter on it');

export const whenSchema = z.strictObject({
  /** Authenticated user names, exactly as in the users file. */
  users: list(z.string().min(1)).optional(),
  /** Groups of the authenticated user (any one). */
  groups: list(z.string().min(1)).optional(),
  /** The client's address is in one of these IPv4 or IPv6 blocks. */
  clientCidrs: list(checked(networkProblem)).optional(),
  listeners: list(z.enum(['submission', 'submissions'])).optional(),
  /** The envelope sender's domain: `example.com`, `*.example.com` or `*`. */
  senderDomains: list(checked(domainPatternProblem)).optional(),
  /** A recipient's domain: the current one at rcpt, any of them at data. */
  recipientDomains: list(checked(domainPatternProblem)).optional(),
});
export type WhenSpec = z.infer<typeof whenSchema>;

export const ruleSpecSchema = z.strictObject({
  name: z.string().regex(RULE_NAME, 'must be 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit'),
  type: z.string().min(1),
  stage: z.enum(STAGES).optional(),
  params: z.unknown().optional(),
  when: whenSchema.optional(),
  mode: z.enum(['enforce', 'monitor']).default('enforce'),
  onError: z.enum(['tempfail', 'continue']).default('tempfail'),
  /** Milliseconds after parsing; the smaller of this and the stage's deadline applies. */
  timeout: duration.prefault('5s'),
});
export type RuleSpec = z.infer<typeof ruleSpecSchema>;

const fileSchema = z.strictObject({ rules: z.array(z.unknown()).default([]) });

export interface PolicyFileRule {
  /** Position in the file's `rules` list. */
  index: number;
  /** The line the rule starts on. */
  line?: number;
  spec: RuleSpec;
}

export interface ParsedPolicyFile {
  /** The rules that are valid on their own, in file order. */
  rules: PolicyFileRule[];
  /** Everything wrong with the file; the rules above are still worth checking further. */
  problems: PolicyProblem[];
  /** Lines of key paths in the file, for problems found later (e.g. in a rule's params). */
  locator: Locator;
}

/**
 * Parse and check one policy file's text; `file` names it in problems. Each rule is checked on
 * its own, so one bad rule does not hide the problems of the next.
 */
export function parsePolicyFile(text: string, file: string): ParsedPolicyFile {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false, lineCounter });
  const locator = new Locator(doc, lineCounter);
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => ({ file, line: lineCounter.linePos(e.pos[0]).line, reason: e.message.split('\n')[0]! }));
    return { rules: [], problems, locator };
  }

  // An empty file (or one with only comments) is a file with no rules.
  let raw: unknown;
  try {
    // toJS() throws for an alias with no anchor and for alias bombs past yaml's maxAliasCount:
    // mistakes in the file, reported like any other problem rather than escaping as an exception.
    raw = doc.toJS() ?? {};
  } catch (err) {
    return { rules: [], problems: [{ file, line: 1, reason: (err as Error).message }], locator };
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    return { rules: [], problems: [{ file, line: 1, reason: 'the file must be a mapping with a "rules:" list' }], locator };
  }
  const top = fileSchema.safeParse(raw);
  if (!top.success) return { rules: [], problems: top.error.issues.flatMap((i) => toProblems(i, [], file, locator)), locator };

  const rules: PolicyFileRule[] = [];
  const problems: PolicyProblem[] = [];
  top.data.rules.forEach((value, index) => {
    const parsed = ruleSpecSchema.safeParse(value);
    if (parsed.success) {
      rules.push({ index, line: locator.nodeLine(['rules', index]), spec: parsed.data });
    } else {
      problems.push(...parsed.error.issues.flatMap((i) => toProblems(i, ['rules', index], file, locator)));
    }
  });
  return { rules, problems, locator };
}

/** `rules[2].params.limit`: indexes in brackets, keys dotted. */
export function formatKeyPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

interface IssueLike {
  path: PropertyKey[];
  message: string;
  code?: string;
  keys?: string[];
  expected?: string;
  values?: unknown[];
}

/**
 * One issue of a zod schema (the file's own, or a rule type's params schema) as problems with
 * their lines. `prefix` is where the validated value sits in the file.
 */
export function toProblems(issue: IssueLike, prefix: readonly PropertyKey[], file: string, locator: Locator): PolicyProblem[] {
  const path = [...prefix, ...issue.path];
  if (issue.code === 'unrecognized_keys' && issue.keys) {
    return issue.keys.map((key) => ({
      file,
      line: locator.keyLine(path, key),
      key: formatKeyPath([...path, key]),
      reason: 'unknown key',
    }));
  }
  let reason = issue.message;
  if (issue.code === 'invalid_type' && issue.expected) {
    reason = locator.has(path) ? `expected ${issue.expected}` : 'is required';
  } else if (issue.code === 'invalid_value' && Array.isArray(issue.values)) {
    reason = `must be one of ${issue.values.map(String).join(', ')}`;
  }
  return [{ file, line: locator.nodeLine(path), key: formatKeyPath(path), reason }];
}

/** Finds where a key path is in the YAML text, so problems can name a line. */
export class Locator {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /** Whether the file has a value at `path`. */
  has(path: readonly PropertyKey[]): boolean {
    return this.doc.hasIn(path as unknown[]);
  }

  /** The line of the value at `path`, else of its nearest ancestor that is in the file. */
  nodeLine(path: readonly PropertyKey[]): number | undefined {
    for (let depth = path.length; depth >= 0; depth--) {
      const node = this.doc.getIn(path.slice(0, depth) as unknown[], true);
      if (isNode(node) && node.range) return this.lines.linePos(node.range[0]).line;
    }
    return undefined;
  }

  /** The line of the key `key` in the mapping at `mapPath`. */
  keyLine(mapPath: readonly PropertyKey[], key: string): number | undefined {
    const map = this.doc.getIn(mapPath as unknown[], true);
    if (isMap(map)) {
      const pair = map.items.find((item) => String(isScalar(item.key) ? item.key.value : item.key) === key);
      if (pair && isNode(pair.key) && pair.key.range) return this.lines.linePos(pair.key.range[0]).line;
    }
    return this.nodeLine(mapPath);
  }
}
