import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { PolicyEngine, type Decision } from '../../../src/policy/engine.js';
import { loadPolicySet } from '../../../src/policy/loader.js';
import { PolicyLoadError } from '../../../src/policy/policyLoadError.js';
import type { PolicySet } from '../../../src/policy/policySet.js';
import { CONTINUE, type PolicyContext, type RuleDeps, type RuleType, type Verdict } from '../../../src/policy/types.js';
import { ManualClock } from '../../../src/util/clock.js';
import { createLogger, silentLogger, type Logger } from '../../../src/util/logger.js';

/** A fresh directory under the system temp dir, removed by the returned cleanup. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'postern-policy-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes each `name: text` into `dir`. */
export function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
}

export function testDeps(clock = new ManualClock()): RuleDeps {
  return {
    clock,
    logger: silentLogger(),
    resolver: async (name) => {
      throw new Error(`no DNS in this test (asked for ${name})`);
    },
    limiter: {
      consume: async () => {
        throw new Error('no limiter in this test');
      },
    },
  };
}

const answerParams = z.strictObject({
  /** What the rule answers: a verdict, or a fault of one kind or another. */
  action: z.enum(['continue', 'reject', 'defer', 'throw', 'hang', 'reject-late']).default('continue'),
  code: z.number().int().optional(),
  enhanced: z.string().optional(),
  text: z.string().default('refused by the test rule'),
  tag: z.string().optional(),
  header: z.string().optional(),
});

/**
 * `answer`: runs at any stage and answers what its params say; `data-only`: a type limited to
 * the data stage. Tiny stand-ins for real rule types.
 */
export const answerType: RuleType<z.infer<typeof answerParams>> = {
  type: 'answer',
  stages: ['mail', 'connect', 'auth', 'rcpt', 'data'],
  params: answerParams,
  description: 'answers what its params say',
  create(params) {
    return {
      evaluate(): Verdict | Promise<Verdict> {
        const annotations = {
          ...(params.tag ? { tags: [params.tag] } : {}),
          ...(params.header ? { headers: [{ name: 'X-Test', value: params.header }] } : {}),
        };
        switch (params.action) {
          case 'continue':
            return { action: 'continue', annotations };
          case 'reject':
            return { action: 'reject', code: params.code ?? 550, enhanced: params.enhanced ?? '5.7.1', text: params.text, annotations };
          case 'defer':
            return { action: 'defer', code: params.code ?? 450, enhanced: params.enhanced ?? '4.7.1', text: params.text, annotations };
          case 'throw':
            throw new Error('the test rule broke');
          case 'hang':
            return new Promise<Verdict>(() => undefined);
          case 'reject-late':
            // Fails only after the engine has stopped waiting: must not become an unhandled rejection.
            return new Promise<Verdict>((_resolve, reject) => setTimeout(() => reject(new Error('too late')), 100));
        }
      },
    };
  },
};

export const dataOnlyType: RuleType<Record<string, never>> = {
  type: 'data-only',
  stages: ['data'],
  params: z.strictObject({}),
  create: () => ({ evaluate: () => CONTINUE }),
};

export const testTypes: RuleType[] = [answerType as RuleType, dataOnlyType as RuleType];

/** A transaction at `stage` as alice from 192.0.2.10 on submission, deadline a minute away. */
export function context(clock: ManualClock, overrides: Partial<PolicyContext> = {}): PolicyContext {
  return {
    stage: 'mail',
    sessionId: 'sess-1',
    client: { address: '192.0.2.10', port: 40000 },
    listener: 'submission',
    user: { name: 'alice', senders: ['alice@example.com'], groups: ['staff'] },
    envelope: { sender: 'alice@example.com', recipients: [] },
    deadline: clock.now() + 60_000,
    ...overrides,
  };
}

/** Loads `files` from a fresh temp dir; the set, an engine on it, and its decisions. */
export async function policyFrom(
  files: Record<string, string>,
  options: { logger?: Logger; types?: RuleType[] } = {},
): Promise<{ set: PolicySet; engine: PolicyEngine; clock: ManualClock; decisions: Decision[]; dir: string; cleanup: () => void }> {
  const { dir, cleanup } = tempDir();
  writeFiles(dir, files);
  const clock = new ManualClock();
  const decisions: Decision[] = [];
  try {
    const set = await loadPolicySet(dir, { builtins: options.types ?? testTypes, deps: testDeps(clock) });
    const engine = new PolicyEngine({ set, clock, logger: options.logger ?? silentLogger(), onDecision: (d) => decisions.push(d) });
    return { set, engine, clock, decisions, dir, cleanup };
  } catch (err) {
    cleanup();
    throw err;
  }
}

/** The PolicyLoadError that loading `files` throws, as its `file:line: key: reason` lines (file names only). */
export async function loadProblems(files: Record<string, string>, types: RuleType[] = testTypes): Promise<string[]> {
  const { dir, cleanup } = tempDir();
  try {
    writeFiles(dir, files);
    await loadPolicySet(dir, { builtins: types, deps: testDeps() });
  } catch (err) {
    if (!(err instanceof PolicyLoadError)) throw err;
    return err.lines.map((line) => line.replace(`${dir}/`, ''));
  } finally {
    cleanup();
  }
  throw new Error('the policy loaded without problems');
}

export interface LogRecord {
  level: string;
  msg: string;
  [field: string]: unknown;
}

/** A real pino logger whose lines are kept, parsed, for assertions. */
export function capturingLogger(): { logger: Logger; records: () => LogRecord[] } {
  const lines: string[] = [];
  const logger = createLogger('debug', { write: (line: string) => void lines.push(line) });
  return { logger, records: () => lines.map((line) => JSON.parse(line) as LogRecord) };
}
