import type { RuleCondition } from './ruleCondition.js';
import { STAGES, type Rule, type RuleType, type Stage } from './types.js';

/** A rule instance from a policy file, built and ready to run. */
export interface PolicyRule {
  readonly name: string;
  readonly type: string;
  readonly stage: Stage;
  /** monitor: a verdict is logged and reported, never acted on. */
  readonly mode: 'enforce' | 'monitor';
  /** On a fault: tempfail answers 451 4.3.0; continue goes on to the next rule. */
  readonly onError: 'tempfail' | 'continue';
  readonly timeoutMs: number;
  readonly applies: RuleCondition;
  readonly rule: Rule;
  /** Where the rule is written, for listings and dry runs. */
  readonly source: { readonly file: string; readonly line?: number };
}

/**
 * A whole, validated policy: every rule of every file in order, grouped by stage. Immutable, so
 * the engine can swap one for another while an evaluation still runs on the old one.
 */
export interface PolicySet {
  readonly rules: readonly PolicyRule[];
  /** The rule types the policy could name: built-ins and the directory's own. */
  readonly types: ReadonlyMap<string, RuleType>;
  /** The rules of one stage, in policy order. */
  forStage(stage: Stage): readonly PolicyRule[];
}

export function createPolicySet(rules: readonly PolicyRule[], types: ReadonlyMap<string, RuleType>): PolicySet {
  const frozen = Object.freeze([...rules]);
  const byStage = new Map<Stage, readonly PolicyRule[]>(STAGES.map((stage) => [stage, Object.freeze(frozen.filter((r) => r.stage === stage))]));
  return Object.freeze({
    rules: frozen,
    types,
    forStage: (stage: Stage) => byStage.get(stage) ?? [],
  });
}

/** No rules at all: every stage continues. What a missing or empty policy directory means. */
export function emptyPolicySet(types: ReadonlyMap<string, RuleType> = new Map()): PolicySet {
  return createPolicySet([], types);
}
