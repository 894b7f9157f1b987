import type { Socket } from 'node:net';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

/**
 * Three behaviours of smtp-server that a submission gateway needs different, and that the
 * library offers no option for. Both are applied to SMTPConnection's prototype once, before
 * any server is created, and check that the internals they rely on are still there so a
 * library upgrade that moves them fails at start instead of changing behaviour silently.
 */

interface ConnectionInternals {
  send(code: number, data?: unknown, context?: unknown): void;
  init(): void;
  _setListeners(callback: () => void): void;
  connectionReady(next?: () => void): void;
  _onCommand(command: unknown, callback?: unknown): unknown;
  _onTimeout(): void;
}

/** The connection state the command-line deadline reads; all of it smtp-server's own. */
interface DeadlineState extends ConnectionInternals {
  _server: { options: { socketTimeout?: number } };
  _parser?: { _remainder?: string } | false;
  _handlerPending?: boolean;
  _dataStream?: unknown;
  _closing?: boolean;
  _closed?: boolean;
  _upgrading?: boolean;
  _commandDeadline?: NodeJS.Timeout;
}

const LEADING_ENHANCED_CODE = /^[245]\.\d{1,3}\.\d{1,3}(?: |$)/;
let applied = false;

export function adaptSmtpServer(): void {
  if (applied) return;
  const proto = SMTPConnection.prototype as unknown as ConnectionInternals;
  for (const name of ['send', 'init', '_setListeners', 'connectionReady', '_onCommand', '_onTimeout'] as const) {
    if (typeof proto[name] !== 'function') {
      throw new Error(`smtp-server's SMTPConnection.${name} is missing: this smtp-server version is not supported`);
    }
  }
  applied = true;

  // 1. Enhanced status codes. smtp-server prefixes every reply with an enhanced code it derives
  //    from the reply code alone (550 -> 5.1.1, 452 -> 4.2.2). For Postern's own replies that
  //    guess is wrong (too many recipients is 452 4.5.3, not 4.2.2) and handler errors cannot
  //    carry the right one. Postern's replies put their code at the head of the text (see
  //    replies.ts); such a text is sent as it is, and the library keeps its own mapping for the
  //    replies it builds itself.
  const send = proto.send;
  proto.send = function sendKeepingEnhancedCode(this: ConnectionInternals, code, data, context) {
    if (typeof data === 'string' && LEADING_ENHANCED_CODE.test(data)) return send.call(this, code, data, false);
    return send.call(this, code, data, context);
  };

  // 2. Greeting delay. smtp-server waits a fixed 100 ms before its 220 greeting to catch
  //    clients that talk first, a heuristic against spam bots on port 25 (Haraka's early_talker,
  //    Postfix's postscreen). A submission client must authenticate before anything it says
  //    matters, so the delay only costs every connection 100 ms (it alone caps 20 concurrent
  //    one-message connections at 200 messages/s). The greeting is sent at once; a client that
  //    talks before it still gets smtp-server's "421 You talk too soon".
  proto.init = function initWithoutGreetingDelay(this: ConnectionInternals) {
    this._setListeners(() => this.connectionReady());
  };

  // 3. A deadline per command line. smtp-server's idle timeout is the socket's, restarted by
  //    every byte, so a client dripping one byte every few hundred ms (slowloris) holds a
  //    session for as long as its line may grow (16 KiB: over an hour at 3 bytes/s). As with
  //    Postfix's smtpd_per_record_deadline, a command line must now be complete within the idle
  //    timeout of the previous command. It only acts on a partial line: an idle client is the
  //    socket timeout's, a message in DATA is the DATA timeout's, a pending handler is ours.
  const connectionReady = proto.connectionReady;
  proto.connectionReady = function readyWithCommandDeadline(this: DeadlineState, next) {
    armCommandDeadline(this);
    return connectionReady.call(this, next);
  };
  const onCommand = proto._onCommand;
  proto._onCommand = function commandWithinDeadline(this: DeadlineState, command, callback) {
    armCommandDeadline(this);
    return onCommand.call(this, command, callback);
  };
}

function armCommandDeadline(connection: DeadlineState): void {
  clearTimeout(connection._commandDeadline);
  const timeoutMs = connection._server.options.socketTimeout;
  if (!timeoutMs) return;
  connection._commandDeadline = setTimeout(() => {
    if (connection._closing || connection._closed) return;
    const partialLine = connection._parser ? (connection._parser._remainder ?? '') !== '' : false;
    // A STARTTLS handshake in progress is bounded by the TLS deadline instead.
    if (!partialLine || connection._handlerPending || connection._dataStream || connection._upgrading) return armCommandDeadline(connection);
    connection._onTimeout();
  }, timeoutMs);
  connection._commandDeadline.unref();
}

/**
 * Ends a connection of an implicit-TLS listener that is still in its handshake. smtp-server
 * wraps the raw socket in a TLSSocket for the handshake and keeps the outermost one in its
 * `_pendingSockets` map; that is the one to destroy (destroying the raw socket underneath a
 * TLS wrap in mid-handshake crashes Node, as smtp-server's own close() notes).
 */
export function destroyPendingTls(server: unknown, raw: Socket): void {
  const pending = (server as { _pendingSockets?: unknown })._pendingSockets;
  if (!(pending instanceof Map)) throw new Error("smtp-server's _pendingSockets is missing: this smtp-server version is not supported");
  const top = pending.get(raw) as Socket | undefined;
  // Not pending any more: the handshake finished and the session owns the socket now.
  if (top) top.destroy();
}
