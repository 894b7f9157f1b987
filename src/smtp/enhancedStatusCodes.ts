import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

const LEADING_ENHANCED_CODE = /^[245]\.\d{1,3}\.\d{1,3}(?: |$)/;
let installed = false;

/**
 * smtp-server prefixes every reply it writes with an enhanced status code it derives from the
 * reply code alone (550 -> 5.1.1, 452 -> 4.2.2). For Postern's own replies that guess is wrong
 * (a 452 for too many recipients is 4.5.3, not 4.2.2), and handler errors have no way to carry
 * the right one. Postern's replies put their enhanced code at the head of the text (see
 * replies.ts); this makes the library send such a text as it is and keep its own mapping for
 * the replies it builds itself. Applied once, before any server is created.
 */
export function keepEnhancedCodesFromReplyText(): void {
  if (installed) return;
  installed = true;
  const proto = SMTPConnection.prototype as unknown as {
    send(code: number, data?: unknown, context?: unknown): void;
  };
  const send = proto.send;
  proto.send = function sendKeepingEnhancedCode(this: unknown, code: number, data?: unknown, context?: unknown) {
    if (typeof data === 'string' && LEADING_ENHANCED_CODE.test(data)) {
      return send.call(this, code, data, false);
    }
    return send.call(this, code, data, context);
  };
}
