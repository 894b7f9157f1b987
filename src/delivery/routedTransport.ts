import type { Config } from '../config/schema.js';
import type { DnsResolver } from '../policy/types.js';
import type { Logger } from '../util/logger.js';
import type { Transaction, Transport } from './deliveryQueue.js';
import type { MtaStsPolicy } from './mtaSts.js';
import { MxSender } from './mxSender.js';
import { Router, type NextHop } from './router.js';
import { Semaphore } from './semaphore.js';
import { SmarthostSender } from './smarthostSender.js';

export interface RoutedTransportOptions {
  config: Config;
  logger: Logger;
  /** For MX and address lookups. */
  resolver: DnsResolver;
  /** The MTA-STS policy of a recipient domain; absent: MTA-STS is off. */
  mtaSts?: (domain: string) => Promise<MtaStsPolicy | undefined>;
  random?: () => number;
  /** Extra CA certificates for MX hosts (delivery.mx.ca), read once at start. */
  mxCa?: Buffer;
}

/**
 * The delivery side's next hops, as the configuration's routes say: each relay (the smarthost,
 * a route's fixed host) with its own connection pool, and direct MX delivery.
 */
export class RoutedTransport implements Transport {
  private readonly router: Router;
  private readonly relays = new Map<string, SmarthostSender>();
  private readonly mx: MxSender;
  /** SMTP transactions (so connections in use) at once, over every next hop. */
  private readonly transactions: Semaphore;

  constructor(private readonly options: RoutedTransportOptions) {
    const { config, logger } = options;
    const delivery = config.delivery;
    this.router = new Router(delivery);
    this.transactions = new Semaphore(delivery.concurrency);
    this.mx = new MxSender({
      resolver: options.resolver,
      logger,
      clientHostname: config.hostname,
      port: delivery.mx.port,
      ...(options.mxCa !== undefined && { ca: options.mxCa }),
      maxConnectionsPerDomain: delivery.mx.maxConnectionsPerDomain,
      connectTimeoutMs: delivery.mx.connectTimeout,
      greetingTimeoutMs: delivery.mx.greetingTimeout,
      ...(options.mtaSts && { mtaSts: options.mtaSts }),
      ...(options.random && { random: options.random }),
    });
  }

  plan(recipients: string[]): Transaction[] {
    return this.router.plan(recipients).map(({ hop, domain, recipients: group }) => ({
      recipients: group,
      send: async (message) => {
        // Transactions of many-domain messages run side by side; this bounds them overall.
        const release = await this.transactions.acquire();
        try {
          return await (hop.kind === 'relay' ? this.relayFor(hop).send(message) : this.mx.send(domain, message, hop));
        } finally {
          release();
        }
      },
    }));
  }

  close(): void {
    for (const relay of this.relays.values()) relay.close();
    this.mx.close();
  }

  private relayFor(hop: Extract<NextHop, { kind: 'relay' }>): SmarthostSender {
    let relay = this.relays.get(hop.name);
    if (!relay) {
      relay = new SmarthostSender(hop.relay, this.options.logger, {
        clientHostname: this.options.config.hostname,
        maxConnections: this.options.config.delivery.concurrency,
      });
      this.relays.set(hop.name, relay);
    }
    return relay;
  }
}
