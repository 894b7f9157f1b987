import type { Clock } from '../util/clock.js';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { PolicyRule, PolicySet } from './policySet.js';
import { CONTINUE, type Annotations, type HeaderToAdd, type PolicyContext, type Refusal, type Stage, type Verdict } from './types.js';
import { verdictProblem } from './verdictCheck.js';

/** What one rule decided at one stage, for logs, metrics and dry runs. */
export interface Decision {
  rule: string;
  type: string;
  stage: Stage;
  mode: 'enforce' | 'monitor';
  /** 'error': the rule threw, passed its deadline or answered something invalid. */
  verdict: 'continue' | 'reject' | 'defer' | 'error';
  /** The refusal's text, or what went wrong for an error. */
  reason?: string;
  /** The refusal's reply code and enhanced status code. */
  code?: number;
  enhanced?: string;
  /** How long the rule took. */
  ms: number;
}

export interface StageOutcome {
  /** What the SMTP adapter answers: continue, or the refusal that won. */
  verdict: Verdict;
  /** Every rule that ran, in order, monitor-mode ones included. */
  decisions: Decision[];
  /** Headers and tags from the enforced rules that ran. */
  annotations: { headers: HeaderToAdd[]; tags: string[] };
}

/**
 * The answer when an enforced rule fails with onError: tempfail. RFC 3463 4.3.0 "other or
 * undefined mail system status": the client should retry, and nothing about the rule leaks.
 */
export const RULE_FAULT_REPLY: Refusal = Object.freeze({
  action: 'defer',
  code: 451,
  enhanced: '4.3.0',
  text: 'Temporary local problem, try again later',
});

export interface PolicyEngineOptions {
  set: PolicySet;
  clock: Clock;
  logger: Logger;
  /** Called for every decision, e.g. to count it. A throw here is logged and ignored. */
  onDecision?: (decision: Decision, ctx: PolicyContext) => void;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

type RuleResult = { verdict: Verdict } | { fault: string };

/**
 * Runs a stage's rules: those whose `when` matches the transaction, in policy order, each
 * under its timeout. The first enforced verdict other than continue is the answer. Monitor
 * rules are run and reported but never change the answer. A rule that throws, times out or
 * answers an invalid verdict is a fault: reported, then 451 4.3.0 (onError: tempfail) or the
 * next rule (onError: continue). Evaluation never throws because of a rule.
 */
export class PolicyEngine {
  private set: PolicySet;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly onDecision: ((decision: Decision, ctx: PolicyContext) => void) | undefined;

  constructor(options: PolicyEngineOptions) {
    this.set = options.set;
    this.clock = options.clock;
    this.logger = options.logger;
    this.onDecision = options.onDecision;
  }

  /** The policy in force now. */
  get current(): PolicySet {
    return this.set;
  }

  /** Replace the policy. An evaluation already running finishes on the set it started with. */
  swap(set: PolicySet): void {
    this.set = set;
  }

  async evaluate(ctx: PolicyContext): Promise<StageOutcome> {
    const rules = this.set.forStage(ctx.stage);
    const decisions: Decision[] = [];
    const headers: HeaderToAdd[] = [];
    const tags = new Set<string>();
    let verdict: Verdict = CONTINUE;

    for (const rule of rules) {
      if (!rule.applies(ctx)) continue;
      const started = this.clock.now();
      const result = await this.run(rule, ctx);
      const ms = Math.max(0, this.clock.now() - started);

      if ('fault' in result) {
        const fault: Decision = { rule: rule.name, type: rule.type, stage: ctx.stage, mode: rule.mode, verdict: 'error', reason: result.fault, ms };
        decisions.push(fault);
        this.report(fault, ctx);
        // A monitor rule changes nothing, not even by failing.
        if (rule.mode === 'enforce' && rule.onError === 'tempfail') {
          verdict = RULE_FAULT_REPLY;
          break;
        }
        continue;
      }

      const answer = result.verdict;
      const decision: Decision = { rule: rule.name, type: rule.type, stage: ctx.stage, mode: rule.mode, verdict: answer.action, ms };
      if (answer.action !== 'continue') Object.assign(decision, { reason: answer.text, code: answer.code, enhanced: answer.enhanced });
      decisions.push(decision);
      this.report(decision, ctx);
      if (rule.mode === 'monitor') continue;

      collect(answer.annotations, headers, tags);
      if (answer.action !== 'continue') {
        verdict = Object.freeze({ action: answer.action, code: answer.code, enhanced: answer.enhanced, text: answer.text });
        break;
      }
    }
    return { verdict, decisions, annotations: { headers, tags: [...tags] } };
  }

  /**
   * One rule under the smaller of its own timeout and the stage's deadline. The rule is told
   * the deadline that applies to it, so its own look-ups can give up in time.
   */
  private async run(rule: PolicyRule, ctx: PolicyContext): Promise<RuleResult> {
    const now = this.clock.now();
    const deadline = Math.min(ctx.deadline, now + rule.timeoutMs);
    const budget = Math.max(0, deadline - now);
    const abort = new AbortController();
    const ruleCtx: PolicyContext = Object.freeze({ ...ctx, deadline, signal: abort.signal });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      // setTimeout takes at most 2^31-1 ms and fires at once for more; no stage waits that long.
      timer = setTimeout(() => {
        // Not waited for any more: tell the rule, so it stops what it is still doing.
        abort.abort(new Error('rule timed out'));
        resolve('timeout');
      }, Math.min(budget, MAX_TIMER_MS));
    });
    try {
      // Inside then(): a synchronous throw becomes a rejection like an asynchronous one. The
      // race also handles a rejection that comes after the timeout, so it is never unhandled.
      const answer = await Promise.race([Promise.resolve().then(() => rule.rule.evaluate(ruleCtx)), timedOut]);
      if (answer === 'timeout') {
        return { fault: budget < rule.timeoutMs ? `did not answer before the stage deadline (${budget}ms left)` : `did not answer within ${rule.timeoutMs}ms` };
      }
      const problem = verdictProblem(answer);
      return problem ? { fault: `returned an invalid verdict: ${problem}` } : { verdict: answer };
    } catch (err) {
      return { fault: `threw: ${errorMessage(err)}` };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Logs a decision and hands it to the hook. */
  private report(decision: Decision, ctx: PolicyContext): void {
    const fields = {
      sessionId: ctx.sessionId,
      ...(ctx.queueId === undefined ? {} : { queueId: ctx.queueId }),
      rule: decision.rule,
      type: decision.type,
      stage: decision.stage,
      mode: decision.mode,
      verdict: decision.verdict,
      ...(decision.reason === undefined ? {} : { reason: decision.reason }),
      ms: decision.ms,
    };
    if (decision.verdict === 'error') this.logger.warn(fields, `policy rule ${decision.rule} failed: ${decision.reason}`);
    else if (decision.verdict === 'continue') this.logger.debug(fields, 'policy decision');
    else this.logger.info(fields, decision.mode === 'monitor' ? 'policy decision (monitor mode, not applied)' : 'policy decision');
    if (!this.onDecision) return;
    try {
      this.onDecision(decision, ctx);
    } catch (err) {
      this.logger.warn({ rule: decision.rule, err: errorMessage(err) }, 'policy decision hook failed');
    }
  }
}

function collect(annotations: Annotations | undefined, headers: HeaderToAdd[], tags: Set<string>): void {
  if (!annotations) return;
  for (const header of annotations.headers ?? []) headers.push({ name: header.name, value: header.value });
  for (const tag of annotations.tags ?? []) tags.add(tag);
}
