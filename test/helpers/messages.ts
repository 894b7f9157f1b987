/** A small message with CRLF line endings and a line that needs dot-stuffing. */
export function sampleMessage(subject = 'Hello'): string {
  return [
    'From: Alice <alice@example.com>',
    'To: Bob <bob@example.net>',
    `Subject: ${subject}`,
    'Date: Mon, 30 Nov 2026 09:00:00 +0000',
    `Message-ID: <${subject.replace(/\W/g, '')}.${Date.now()}@example.com>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Hello Bob,',
    '.a line that starts with a dot survives dot-stuffing',
    'Bye.',
    '',
  ].join('\r\n');
}

/**
 * Splits what the upstream received into Postern's Received header (with its folded
 * continuation lines) and the rest, which must be the client's message byte for byte.
 */
export function splitReceivedHeader(raw: Buffer): { received: string; rest: Buffer } {
  const text = raw.toString('latin1');
  if (!text.startsWith('Received: ')) throw new Error(`message does not start with a Received header: ${text.slice(0, 80)}`);
  let end = text.indexOf('\r\n');
  while (text[end + 2] === '\t' || text[end + 2] === ' ') end = text.indexOf('\r\n', end + 2);
  return { received: text.slice(0, end + 2), rest: raw.subarray(end + 2) };
}
