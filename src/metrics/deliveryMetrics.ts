import type { AttemptReport } from '../delivery/deliveryQueue.js';
import type { Metrics } from './metrics.js';

/**
 * For DeliveryQueue.onAttempt: each recipient tried counts one attempt by its result, and each
 * delivered one adds its latency, from the 250 that accepted the message (the envelope's
 * receivedAt) to the attempt that delivered it (the recipient's lastAttemptAt). The report
 * comes after the attempt's state is saved, so a retried recipient is never counted twice for
 * one attempt.
 */
export function deliveryAttemptCounter(metrics: Metrics): (report: AttemptReport) => void {
  return (report) => {
    for (const recipient of report.recipients) {
      metrics.deliveryAttempts.inc({ result: recipient.outcome });
      if (recipient.outcome !== 'delivered') continue;
      const state = report.envelope.recipients.find((r) => r.address === recipient.address);
      if (state?.lastAttemptAt === undefined) continue;
      metrics.deliveryLatency.observe(Math.max(0, state.lastAttemptAt - report.envelope.receivedAt) / 1000);
    }
  };
}
