import { readFileSync } from 'node:fs';
import { isMap, isNode, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { PosternError } from '../util/errors.js';
import { userEntrySchema, userNameProblem, usersFileSchema } from './usersFileSchema.js';

/** One user as read from the users file. */
export interface UserRecord {
  name: string;
  passwordHash: string;
  senders: readonly string[];
  groups: readonly string[];
}

export interface UsersFileProblem {
  /** Dotted key path, e.g. "users.alice.senders.0"; empty for the file as a whole. */
  key: string;
  /** 1-based line in the file, when the problem has a place in it. */
  line?: number;
  reason: string;
}

/**
 * A users file that cannot be used. Messages name the file, the line and the key, and never
 * repeat a value from the file: values there are password hashes.
 */
export class UsersFileError extends PosternError {
  constructor(
    readonly file: string,
    readonly problems: readonly UsersFileProblem[],
  ) {
    super('USERS_FILE_INVALID', `Invalid users file ${file}:\n  ${problems.map(describeProblem).join('\n  ')}`);
    this.name = 'UsersFileError';
  }

  /** The line of the first problem, for a one-line log. */
  get line(): number | undefined {
    return this.problems[0]?.line;
  }

  /** The first problem without its line, for a one-line log. */
  get reason(): string {
    const first = this.problems[0];
    return first ? (first.key ? `${first.key}: ${first.reason}` : first.reason) : 'unknown problem';
  }
}

function describeProblem(problem: UsersFileProblem): string {
  const at = problem.line === undefined ? '' : `line ${problem.line}: `;
  return `${at}${problem.key ? `${problem.key}: ` : ''}${problem.reason}`;
}

/** Read and validate the users file. Throws UsersFileError, also when it cannot be read. */
export function readUsersFile(path: string): ReadonlyMap<string, UserRecord> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'the file does not exist' : `cannot read the file: ${(err as Error).message}`;
    throw new UsersFileError(path, [{ key: '', reason }]);
  }
  return parseUsersFile(text, path);
}

/**
 * Validate users file text; `path` names it in errors. Returns the users by name (names are
 * kept exactly as written: lookups are case-sensitive). Throws UsersFileError listing every
 * problem found, each with its line.
 */
export function parseUsersFile(text: string, path: string): ReadonlyMap<string, UserRecord> {
  const lineCounter = new LineCounter();
  // uniqueKeys: a user listed twice would otherwise silently be the last one.
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false, lineCounter });
  if (doc.errors.length > 0) {
    throw new UsersFileError(
      path,
      doc.errors.map((e) => ({ key: '', line: lineCounter.linePos(e.pos[0]).line, reason: firstLine(e.message) })),
    );
  }
  const locate = new Locator(doc, lineCounter);

  const raw: unknown = doc.toJS();
  if (raw === null || raw === undefined) {
    throw new UsersFileError(path, [{ key: '', reason: 'the file is empty; it needs a top-level "users:" mapping' }]);
  }
  const file = usersFileSchema.safeParse(raw);
  if (!file.success) throw new UsersFileError(path, file.error.issues.flatMap((issue) => toProblems(issue, [], locate)));

  const problems: UsersFileProblem[] = [];
  const users = new Map<string, UserRecord>();
  // Object.entries on yaml's own output: each user is an own property, even one named __proto__.
  for (const [name, value] of Object.entries(file.data.users)) {
    const nameProblem = userNameProblem(name);
    if (nameProblem) {
      problems.push({ key: `users.${name}`, line: locate.keyLine(['users'], name), reason: nameProblem });
      continue;
    }
    const entry = userEntrySchema.safeParse(value);
    if (!entry.success) {
      problems.push(...entry.error.issues.flatMap((issue) => toProblems(issue, ['users', name], locate)));
      continue;
    }
    users.set(name, {
      name,
      passwordHash: entry.data.password,
      senders: Object.freeze([...entry.data.senders]),
      groups: Object.freeze([...entry.data.groups]),
    });
  }
  if (problems.length > 0) throw new UsersFileError(path, problems);
  return users;
}

function toProblems(issue: z.core.$ZodIssue, prefix: readonly string[], locate: Locator): UsersFileProblem[] {
  const path = [...prefix, ...issue.path.map(String)];
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({
      key: [...path, key].join('.'),
      line: locate.keyLine(path, key),
      reason: 'unknown key',
    }));
  }
  const reason = issue.code === 'invalid_type' ? `expected ${issue.expected}` : issue.message;
  return [{ key: path.join('.'), line: locate.nodeLine(path), reason }];
}

function firstLine(text: string): string {
  return text.split('\n')[0]!;
}

/** Finds where a key path is in the YAML text, so errors can name a line. */
class Locator {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /** The line of the value at `path`, else of its nearest ancestor that is in the file. */
  nodeLine(path: readonly string[]): number | undefined {
    for (let depth = path.length; depth >= 0; depth--) {
      const node = this.doc.getIn(path.slice(0, depth), true);
      if (isNode(node) && node.range) return this.lines.linePos(node.range[0]).line;
    }
    return undefined;
  }

  /** The line of the key `key` in the mapping at `mapPath`. */
  keyLine(mapPath: readonly string[], key: string): number | undefined {
    const map = this.doc.getIn(mapPath, true);
    if (isMap(map)) {
      const pair = map.items.find((item) => String(isScalar(item.key) ? item.key.value : item.key) === key);
      if (pair && isNode(pair.key) && pair.key.range) return this.lines.linePos(pair.key.range[0]).line;
    }
    return this.nodeLine(mapPath);
  }
}
