/**
 * Runs the voice-activity service on 127.0.0.1 (README.md walks it step by step):
 *
 *   TRUSTED_KEY=/tmp/vad/release.pub MANIFEST_URL=http://127.0.0.1:8000/manifest.json \
 *   MODEL_DIR=/tmp/vad/models DATA_DIR=/tmp/vad/data CHECK_EVERY_MS=5000 npx tsx examples/node-host/main.ts
 *
 *   GET  /health   the active version, its inputs, and whether it answers the golden tone as published
 *   POST /speech   16 kHz float32 little-endian samples, whole frames of 512: one speech probability a frame
 *
 * TRUSTED_KEY (required) names the public key from `model-updater keygen` that the manifests are signed with.
 * ALLOW_UNSIGNED=1 instead accepts an unsigned update service, for trying things out only.
 * MANIFEST_URL (default http://127.0.0.1:8000/manifest.json), MODEL_DIR (default ./vad/models), DATA_DIR
 * (default ./vad/data), CHECK_EVERY_MS (default 600000) and PORT (default 8080) are optional.
 */
import http from 'node:http';
import { isUpdateError, readPublicKeyFile } from '../../src/index.js';

const env = process.env;
const usage = `usage: TRUSTED_KEY=<release.pub> [MANIFEST_URL=<url>] [MODEL_DIR=<dir>] [DATA_DIR=<dir>] [CHECK_EVERY_MS=<ms>] [PORT=<port>] npx tsx examples/node-host/main.ts
       (or ALLOW_UNSIGNED=1 instead of TRUSTED_KEY, to try an unsigned update service)`;

/** Stops with one line that says what to do, not a stack trace. */
function fail(message: string, code = 1): never {
  console.error(message);
  process.exit(code);
}

if (!env.TRUSTED_KEY && env.ALLOW_UNSIGNED !== '1') {
  fail(`The service needs the update service's public key: set TRUSTED_KEY to the .pub file from \`model-updater keygen\`.\n${usage}`, 2);
}
const trust = env.TRUSTED_KEY
  ? { trustedKeys: [await readPublicKeyFile(env.TRUSTED_KEY).catch((error: Error) => fail(`TRUSTED_KEY=${env.TRUSTED_KEY}: ${error.message}`))] }
  : { allowUnsigned: true };

// Loaded after the settings are checked: onnxruntime takes a moment to load, a wrong setting should not wait for it.
const { createVadService } = await import('./service.js');
const service = createVadService({
  manifestUrl: env.MANIFEST_URL ?? 'http://127.0.0.1:8000/manifest.json',
  dir: env.MODEL_DIR ?? './vad/models',
  dataDir: env.DATA_DIR ?? './vad/data',
  checkEveryMs: Number(env.CHECK_EVERY_MS ?? 600_000),
  updater: trust,
});
const { updater } = service;
updater.on('activated', ({ version }) => console.log(`model ${version} active (inputs: ${updater.model?.inputNames.join(', ')})`));
updater.on('rolled-back', ({ version, cause }) => console.log(`kept ${version ?? 'no model'}: ${cause?.message ?? 'rolled back by hand'}`));
updater.on('error', (error) => console.log(`update failed (${error.code}): ${error.message}`));
await service.start().catch((error: unknown) => fail(isUpdateError(error) ? `${error.code}: ${error.message}` : String(error)));

const server = http.createServer((req, res) => {
  const answer = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (req.method === 'GET' && url.pathname === '/health') {
    void service.health().then((health) => answer(health.ok ? 200 : 503, health));
  } else if (req.method === 'POST' && url.pathname === '/speech') {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      // Copied into an aligned buffer: a Float32Array needs its offset to be a multiple of 4.
      const samples = new Float32Array(new Uint8Array(body).buffer, 0, Math.floor(body.length / 4));
      service.speech(samples).then(
        (speech) => answer(200, speech),
        (error: Error) => answer(400, { error: error.message }),
      );
    });
  } else {
    answer(404, { error: 'GET /health or POST /speech (16 kHz float32 samples, whole frames of 512)' });
  }
});
const port = Number(env.PORT ?? 8080);
server.once('error', (error: NodeJS.ErrnoException) => fail(`Cannot listen on 127.0.0.1:${port} (${error.code ?? error.message}): set PORT to a free port.`));
server.listen(port, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${port} (GET /health, POST /speech)`));
process.once('SIGINT', () => {
  server.close();
  void service.stop();
});
