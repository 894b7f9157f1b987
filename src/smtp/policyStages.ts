import type { SMTPServerAddress, SMTPServerSession } from 'smtp-server';
import type { Annotations, ListenerName, PolicyContext, PolicyMessage, PolicyUser, Stage, Verdict } from '../policy/types.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { SmtpReply } from './replies.js';

/** What the SMTP side needs from the policy engine: the outcome of one stage. */
export interface PolicyGate {
  evaluate(ctx: PolicyContext): Promise<{ verdict: Verdict; annotations: Annotations }>;
}

/** What a session knows that smtp-server's session object does not. */
export interface SessionFacts {
  listener: ListenerName;
  tlsProtocol?: string;
  tlsCipher?: string;
  log: Logger;
}

export interface StageResult {
  /** The reply to send instead of going on, when the policy refused. */
  refusal?: SmtpReply;
  /** Header fields to add (data stage), already checked to be well-formed. */
  headers: string[];
}

/**
 * Builds each stage's read-only context from the SMTP session, asks the policy, and turns its
 * verdict into a reply. Policy decides, the SMTP adapter speaks (DESIGN.md): this is the one
 * place a verdict becomes wire text.
 */
export class PolicyStages {
  constructor(
    private readonly gate: PolicyGate | undefined,
    private readonly clock: Clock,
    /** How long one stage's rules may take together. */
    private readonly stageTimeoutMs: number,
  ) {}

  async check(
    stage: Stage,
    session: SMTPServerSession,
    facts: SessionFacts,
    extra: {
      recipient?: string;
      message?: PolicyMessage;
      queueId?: string;
      /** At the mail stage smtp-server records the sender only after the hook answers. */
      mailFrom?: SMTPServerAddress;
      /** At the auth stage the user is not on the session until the hook answers. */
      user?: PolicyUser;
    } = {},
  ): Promise<StageResult> {
    if (!this.gate) return { headers: [] };
    const user = extra.user ?? (session.user as PolicyUser | undefined);
    const mailFrom = extra.mailFrom ?? (session.envelope.mailFrom || undefined);
    const declaredSize = mailFrom && mailFrom.args && typeof mailFrom.args === 'object' ? Number((mailFrom.args as Record<string, unknown>).SIZE) : NaN;
    const ctx: PolicyContext = {
      stage,
      sessionId: session.id,
      ...(extra.queueId !== undefined && { queueId: extra.queueId }),
      client: { address: session.remoteAddress, port: session.remotePort },
      listener: facts.listener,
      ...(session.secure && { tls: { protocol: facts.tlsProtocol, cipher: facts.tlsCipher } }),
      // Copies, frozen: the session's user must not change for a rule that would write to it.
      ...(user && { user: Object.freeze({ name: user.name, senders: Object.freeze([...user.senders]), groups: Object.freeze([...user.groups]) }) }),
      ...(session.hostNameAppearsAs && { helo: session.hostNameAppearsAs }),
      envelope: {
        ...(mailFrom && { sender: mailFrom.address }),
        recipients: session.envelope.rcptTo.map((r) => r.address),
        ...(Number.isFinite(declaredSize) && { declaredSize }),
      },
      ...(extra.recipient !== undefined && { recipient: extra.recipient }),
      ...(extra.message && { message: extra.message }),
      deadline: this.clock.now() + this.stageTimeoutMs,
    };
    const { verdict, annotations } = await this.gate.evaluate(ctx);
    const headers = stage === 'data' ? wellFormedHeaders(annotations, facts.log) : [];
    if (verdict.action === 'continue') return { headers };
    // A reply is one line; UTF-8 in it only once the client asked for SMTPUTF8 (RFC 6531 §3.7.4).
    let text = verdict.text.replace(/[\r\n]+/g, ' ');
    if (!session.envelope.smtpUtf8) text = text.replace(/[^\x20-\x7e]/g, '?');
    return { refusal: { code: verdict.code, enhanced: verdict.enhanced, text }, headers };
  }
}

const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]{1,76}$/;

/**
 * Header fields from rules, as CRLF-terminated lines. A name that is not a field name, a value
 * with a line break or a control character, or a line past RFC 5322's 998 octets is dropped
 * and logged: a rule must never be a way to inject header or body lines.
 */
function wellFormedHeaders(annotations: Annotations, log: Logger): string[] {
  const lines: string[] = [];
  for (const { name, value } of annotations.headers ?? []) {
    const line = `${name}: ${value}`;
    // eslint-disable-next-line no-control-regex
    if (!FIELD_NAME.test(name) || /[\x00-\x08\x0a-\x1f\x7f]/.test(value) || Buffer.byteLength(line) > 998) {
      log.warn({ event: 'policy', header: name.slice(0, 80) }, 'a rule asked to add a malformed header field; dropped');
      continue;
    }
    lines.push(`${line}\r\n`);
  }
  return lines;
}
