/**
 * Runs the example service by hand over HTTP on 127.0.0.1: GET /health, GET /predict?x=1,2,3.
 *
 *   npm install --prefix examples/node-host
 *   MANIFEST_URL=http://127.0.0.1:8000/manifest.json MODEL_DIR=/tmp/models TRUSTED_KEY=release.pub npx tsx examples/node-host/main.ts
 *
 * TRUSTED_KEY names the public key (`model-updater keygen`) the manifests are signed with; ALLOW_UNSIGNED=1
 * instead accepts an unsigned service (for trying it out only). One of the two is required.
 */
import http from 'node:http';
import { readPublicKeyFile } from '../../src/index.js';
import { createModelService } from './service.js';

const trustedKey = process.env.TRUSTED_KEY;

const service = createModelService({
  manifestUrl: process.env.MANIFEST_URL ?? 'http://127.0.0.1:8000/manifest.json',
  dir: process.env.MODEL_DIR ?? './models',
  checkEveryMs: Number(process.env.CHECK_EVERY_MS ?? 60_000),
  updater: trustedKey ? { trustedKeys: [await readPublicKeyFile(trustedKey)] } : { allowUnsigned: process.env.ALLOW_UNSIGNED === '1' },
});
service.updater.on('activated', ({ version }) => console.log(`model ${version} active`));
service.updater.on('rolled-back', ({ version, cause }) => console.log(`kept ${version}: ${cause?.code} ${cause?.message}`));
await service.start();

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  try {
    const body = url.pathname === '/predict' ? { y: await service.predict((url.searchParams.get('x') ?? '0,0,0').split(',').map(Number)) } : await service.health();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  } catch (error) {
    res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: (error as Error).message }));
  }
});
server.listen(Number(process.env.PORT ?? 8080), '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${process.env.PORT ?? 8080}`));
process.once('SIGINT', () => {
  server.close();
  void service.stop();
});
