/**
 * Runs the browser example by hand: builds it, publishes 1.0.0 and 1.1.0 (good) and 1.2.0 (wrong
 * weights) to a demo site, and serves both from 127.0.0.1.
 *
 *   npx tsx examples/browser/serve.ts     # then open the printed URL; Ctrl-C stops
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer } from '../../test/helpers/testServer.js';
import { buildBrowserExample } from './build.js';
import { GOOD_MODEL } from './model.js';
import { publishModel } from './publishDemo.js';

const root = await mkdtemp(join(tmpdir(), 'model-updater-browser-example-'));
await buildBrowserExample(join(root, 'app'));
const site = join(root, 'app', 'site');
await publishModel(site, '1.0.0', GOOD_MODEL, 512 * 1024);
await publishModel(site, '1.1.0', { w: [1, 0.5, 0], b: 2.5 }, 4 * 1024 * 1024);
await publishModel(site, '1.2.0', { w: [9, 9, 9], b: 0 }, 256 * 1024);
const server = await startTestServer({ root });
console.log(`open ${server.url}app/index.html  (1.0.0 → 1.1.0 → 1.2.0, which fails its health check and rolls back)`);
process.once('SIGINT', () => void server.close());
