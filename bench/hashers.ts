/**
 * Incremental SHA-256 in JavaScript, for the browser store (WebCrypto has no streaming digest): hash-wasm
 * against @noble/hashes on the same data, fed in 64 KiB chunks as a download would feed them.
 *
 *   npx tsx bench/hashers.ts                 # 64 MiB, best of 3
 *   BENCH_MB=256 BENCH_RUNS=5 npx tsx bench/hashers.ts
 *
 * node:crypto is printed as a reference (Node only, not usable in a page). The last line is one JSON
 * object: {"mb", "hashWasmMBps", "nobleMBps", "nodeCryptoMBps"}.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { createSHA256 } from 'hash-wasm';

const mb = Number(process.env.BENCH_MB ?? 64);
const runs = Number(process.env.BENCH_RUNS ?? 3);
const CHUNK = 64 * 1024;
const data = randomFillSync(new Uint8Array(mb * 1024 * 1024));
const chunks: Uint8Array[] = [];
for (let offset = 0; offset < data.length; offset += CHUNK) chunks.push(data.subarray(offset, offset + CHUNK));

async function best(name: string, hash: () => Promise<string> | string): Promise<{ mbps: number; digest: string }> {
  let seconds = Infinity;
  let digest = '';
  for (let run = 0; run < runs; run++) {
    const started = performance.now();
    digest = await hash();
    seconds = Math.min(seconds, (performance.now() - started) / 1000);
  }
  const mbps = mb / seconds;
  console.log(`${name.padEnd(14)} ${seconds.toFixed(3)} s  ${mbps.toFixed(0)} MB/s  ${digest.slice(0, 16)}`);
  return { mbps, digest };
}

const wasm = await best('hash-wasm', async () => {
  const hasher = await createSHA256();
  hasher.init();
  for (const chunk of chunks) hasher.update(chunk);
  return hasher.digest('hex');
});
const noble = await best('@noble/hashes', () => {
  const hasher = sha256.create();
  for (const chunk of chunks) hasher.update(chunk);
  return bytesToHex(hasher.digest());
});
const node = await best('node:crypto', () => {
  const hasher = createHash('sha256');
  for (const chunk of chunks) hasher.update(chunk);
  return hasher.digest('hex');
});
if (wasm.digest !== node.digest || noble.digest !== node.digest) throw new Error('The hashers disagree: a bug in the benchmark.');
console.log(JSON.stringify({ mb, hashWasmMBps: Math.round(wasm.mbps), nobleMBps: Math.round(noble.mbps), nodeCryptoMBps: Math.round(node.mbps) }));
