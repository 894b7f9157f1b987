import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HeaderField, PolicyContext, PolicyMessage, PolicyUser, Rule, RuleDeps, RuleType, Verdict } from '../../../src/policy/types.js';
import { ManualClock } from '../../../src/util/clock.js';
import { silentLogger } from '../../../src/util/logger.js';

/**
 * What the rule tests share: fake deps, a context with sensible defaults for one stage, and a
 * message spooled to a real file so rules that read the body read it as the engine hands it over.
 */

export const alice: PolicyUser = { name: 'alice', senders: ['alice@example.com'], groups: ['staff'] };

/** Deps whose resolver and limiter fail loudly: the rules under test must not need them. */
export function fakeDeps(clock = new ManualClock()): RuleDeps {
  return {
    clock,
    logger: silentLogger(),
    resolver: async (name) => {
      throw new Error(`unexpected DNS lookup of ${name}`);
    },
    limiter: {
      consume: async () => {
        throw new Error('unexpected limiter use');
      },
    },
  };
}

/** The params a rule type makes of `input`, through its real schema; throws with the problems. */
export function parseParams<P>(type: RuleType<P>, input: unknown): P {
  const schema = type.params;
  if (typeof schema === 'function') return schema(input);
  const result = schema.safeParse(input);
  if (!result.success) {
    throw new Error(result.error.issues.map((issue) => `${issue.path.map(String).join('.')}: ${issue.message}`).join('; '));
  }
  return result.data;
}

/** A rule instance built as the engine builds one: params through the schema, fake deps. */
export function createRule<P>(type: RuleType<P>, input: unknown, deps: RuleDeps = fakeDeps()): Rule {
  return type.create(parseParams(type, input), deps);
}

/** Evaluates and awaits, whether the rule answers synchronously or not. */
export async function verdictOf(rule: Rule, ctx: PolicyContext): Promise<Verdict> {
  return await rule.evaluate(ctx);
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
export type ContextOverrides = Partial<Omit<Mutable<PolicyContext>, 'envelope'>> & {
  envelope?: Partial<Mutable<PolicyContext['envelope']>>;
};

/** A context at `mail` for alice from 203.0.113.5, overridable field by field. */
export function makeContext(overrides: ContextOverrides = {}): PolicyContext {
  const { envelope, ...rest } = overrides;
  return {
    stage: 'mail',
    sessionId: 'test-session',
    client: { address: '203.0.113.5', port: 49152 },
    listener: 'submission',
    tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' },
    user: alice,
    helo: 'client.example.com',
    deadline: Date.UTC(2026, 0, 1) + 5_000,
    ...rest,
    envelope: { sender: 'alice@example.com', recipients: [], ...envelope },
  };
}

/** The header block of `raw` as the engine presents it: unfolded (RFC 5322 section 2.2.3), in order. */
export function parseHeaderBlock(raw: string): HeaderField[] {
  const end = raw.search(/\r?\n\r?\n/);
  const lines = (end === -1 ? raw : raw.slice(0, end)).split(/\r?\n/);
  const fields: HeaderField[] = [];
  for (const line of lines) {
    const last = fields[fields.length - 1];
    if (/^[ \t]/.test(line) && last) {
      last.value = `${last.value} ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    fields.push({ name, key: name.toLowerCase(), value: line.slice(colon + 1).trim() });
  }
  return fields;
}

/** Writes messages to files in a temp directory and hands them over as the data stage does. */
export class MessageSpool {
  private readonly dir = mkdtempSync(join(tmpdir(), 'postern-rules-'));
  private count = 0;

  /** `raw` with LF line ends turned into CRLF, as a message arrives over SMTP. */
  add(raw: string): PolicyMessage {
    const text = raw.replace(/\r?\n/g, '\r\n');
    const file = join(this.dir, `message-${++this.count}.eml`);
    writeFileSync(file, text);
    return {
      headers: parseHeaderBlock(text),
      size: Buffer.byteLength(text),
      open: () => createReadStream(file),
    };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A context at `data` carrying `message`. */
export function dataContext(message: PolicyMessage, overrides: ContextOverrides = {}): PolicyContext {
  return makeContext({
    stage: 'data',
    queueId: 'TESTQUEUEID',
    message,
    ...overrides,
    envelope: { recipients: ['bob@example.org'], ...overrides.envelope },
  });
}
