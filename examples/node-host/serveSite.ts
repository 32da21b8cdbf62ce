/**
 * Serves a folder written by `model-updater publish` over HTTP on 127.0.0.1, as any static host would
 * (ETag, Range): the update service the example's service checks.
 *
 *   npx tsx examples/node-host/serveSite.ts /tmp/vad/site     # http://127.0.0.1:8000/manifest.json; PORT=... to change
 */
import { resolve } from 'node:path';
import { startTestServer } from '../../test/helpers/testServer.js';

const [root] = process.argv.slice(2);
if (!root) {
  console.error('usage: [PORT=8000] npx tsx examples/node-host/serveSite.ts <folder written by model-updater publish>');
  process.exit(2);
}
const server = await startTestServer({ root: resolve(root), port: Number(process.env.PORT ?? 8000) });
console.log(`serving ${resolve(root)} at ${server.url} (manifest: ${server.url}manifest.json); Ctrl-C stops`);
process.once('SIGINT', () => void server.close());
