/**
 * Runs the browser example by hand: builds the page, publishes 1.0.0 to its update site, and serves both
 * from 127.0.0.1. The page's "Publish next version" button (or `curl -X POST <url>publish-next`)
 * publishes 1.1.0, then the bad 1.2.0. README.md walks it.
 *
 *   npx tsx examples/browser/serve.ts     # PORT=8000 by default; Ctrl-C stops
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBrowserExample } from './build.js';
import { startExampleServer } from './exampleServer.js';

const port = Number(process.env.PORT ?? 8000);
const root = await mkdtemp(join(tmpdir(), 'model-updater-browser-example-'));
await buildBrowserExample(join(root, 'app'));
const server = await startExampleServer({ root, port, onPublish: (step) => console.log(`published ${step.version}: ${step.note}`) }).catch((error: NodeJS.ErrnoException) => {
  console.error(`Cannot serve on 127.0.0.1:${port} (${error.code ?? error.message}): set PORT to a free port.`);
  process.exit(1);
});
// Loopback is fast: the first download of 1.1.0 is sent slowly (64 KiB every 100 ms, about 7 s) so
// there is time to reload the page in the middle of it. The resumed request comes at full speed.
server.files.fault('/app/site/1.1.0/weights.bin', { kind: 'trickle', bytes: 64 * 1024, intervalMs: 100, times: 1 });
console.log(`open ${server.url}app/index.html`);
console.log(`next: the page's "Publish next version" button, or curl -X POST ${server.url}publish-next`);
process.once('SIGINT', () => void server.close());
