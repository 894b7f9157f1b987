/**
 * What is wrong with a policy directory, one entry per problem, each naming the file, the
 * line and the key so an operator can go straight to it:
 * `policies/10-senders.yaml:7: rules[2].params.limit: expected number`.
 */

export interface PolicyProblem {
  /** The file as the directory path and its name, e.g. "/etc/postern/policies/10-senders.yaml". */
  file: string;
  /** 1-based line, when the problem has a place in the file. */
  line?: number;
  /** Where in the file, e.g. "rules[2].params.limit"; absent for the file as a whole. */
  key?: string;
  reason: string;
}

export function formatProblem(problem: PolicyProblem): string {
  const at = problem.line === undefined ? problem.file : `${problem.file}:${problem.line}`;
  return `${at}: ${problem.key ? `${problem.key}: ` : ''}${problem.reason}`;
}

/**
 * A policy that cannot be used. Thrown once for the whole directory with every problem found,
 * so a fix-and-retry loop does not reveal them one at a time.
 */
export class PolicyLoadError extends Error {
  constructor(
    readonly dir: string,
    readonly problems: readonly PolicyProblem[],
  ) {
    super(`Invalid policy in ${dir}:\n  ${problems.map(formatProblem).join('\n  ')}`);
    this.name = 'PolicyLoadError';
  }

  /** Each problem as one `file:line: key: reason` line. */
  get lines(): string[] {
    return this.problems.map(formatProblem);
  }
}
