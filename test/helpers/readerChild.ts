/**
 * A reader beside the updater, as another process: `readActive({ dir })`, prints what it got as one JSON
 * line (or `{ "error": code }`), then holds the version until it reads `release` on stdin.
 */
import { readActive } from '../../src/index.js';

const dir = process.argv[2]!;
try {
  const model = await readActive({ dir });
  process.stdout.write(`${JSON.stringify({ version: model.version, path: model.path, files: model.files, bundled: model.bundled ?? false, pid: process.pid })}\n`);
  process.stdin.setEncoding('utf8');
  for await (const chunk of process.stdin) {
    if (String(chunk).includes('release')) {
      await model.release();
      process.stdout.write('released\n');
      process.exit(0);
    }
  }
} catch (error) {
  process.stdout.write(`${JSON.stringify({ error: (error as { code?: string }).code ?? String(error) })}\n`);
  process.exit(1);
}
