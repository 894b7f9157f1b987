import type { ListenerName } from '../config/schema.js';
import type { AuthAttemptResult, ConnectionRefusal, RejectionStage, SmtpObserver } from '../smtp/submissionServer.js';
import { AUTH_MECHANISMS, zeroListenerSeries, type Metrics } from './metrics.js';

/**
 * The SMTP side's events as Prometheus series. The SMTP code speaks only of what happened
 * (SmtpObserver); which counter that moves is decided here.
 */
export class SmtpMetrics implements SmtpObserver {
  constructor(
    private readonly metrics: Metrics,
    listeners: readonly ListenerName[],
  ) {
    zeroListenerSeries(metrics, listeners);
  }

  connectionOpened(listener: ListenerName): void {
    this.metrics.connections.inc({ listener });
    this.metrics.connectionsActive.inc({ listener });
  }

  connectionClosed(listener: ListenerName): void {
    this.metrics.connectionsActive.dec({ listener });
  }

  connectionRefused(listener: ListenerName, reason: ConnectionRefusal): void {
    this.metrics.connectionsRefused.inc({ listener, reason });
  }

  tlsEstablished(listener: ListenerName, version: string): void {
    this.metrics.tlsSessions.inc({ listener, version });
  }

  tlsHandshakeFailed(listener: ListenerName): void {
    this.metrics.tlsHandshakeFailures.inc({ listener });
  }

  authAttempted(mechanism: string, result: AuthAttemptResult): void {
    // smtp-server offers only these; anything else would be a label value nobody bounded.
    const known = (AUTH_MECHANISMS as readonly string[]).includes(mechanism) ? mechanism : 'other';
    this.metrics.authAttempts.inc({ mechanism: known, result });
  }

  messageReceived(): void {
    this.metrics.messagesReceived.inc();
  }

  messageAccepted(sizeBytes: number): void {
    this.metrics.messagesAccepted.inc();
    this.metrics.messageSize.observe(sizeBytes);
  }

  messageRejected(stage: RejectionStage, reason: string): void {
    this.metrics.messagesRejected.inc({ stage, reason });
  }
}
