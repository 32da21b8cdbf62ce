/**
 * The Node Transport: the direct exchange (directHttpExchange.ts: one reused 1 MiB read buffer, no
 * copy per segment) for plain responses, node:http (nodeHttpExchange.ts) for whatever it declines.
 */
import tls from 'node:tls';
import type { Transport } from '../core/ports/transport.js';
import { openDirectExchange } from './directHttpExchange.js';
import { openNodeHttpExchange } from './nodeHttpExchange.js';
import type { ProxySetting } from './proxy.js';

export interface NodeTransportOptions {
  /** Extra CA certificates (PEM) to trust for https, on top of Node's roots: a private model server's. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Try the direct exchange first. Default true; false sends every request over node:http (for measuring it). */
  direct?: boolean;
  /** A proxy URL instead of HTTPS_PROXY / HTTP_PROXY / NO_PROXY, or false to ignore them (proxy.ts). Each redirect hop decides for its own URL. */
  proxy?: ProxySetting;
}

/**
 * @example
 * const transport = createNodeTransport({ ca: readFileSync('private-ca.pem') })
 * const response = await transport.get({ url: new URL(href), headers: {}, signal })
 */
export function createNodeTransport(options: NodeTransportOptions = {}): Transport {
  const ca = options.ca === undefined ? undefined : [...tls.rootCertificates, ...[options.ca].flat()];
  const direct = options.direct ?? true;
  return {
    async get({ url, headers, signal }) {
      const exchangeOptions = { signal, ca, proxy: options.proxy };
      return (direct ? await openDirectExchange(url, headers, exchangeOptions) : undefined) ?? (await openNodeHttpExchange(url, headers, exchangeOptions));
    },
  };
}
