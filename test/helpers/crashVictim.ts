/**
 * The process the kill test kills: one update of `dir` from `manifestUrl`, nothing else.
 * Prints "ready" just before the updater starts, so the killer's clock starts there.
 */
import { createModelUpdater } from '../../src/createModelUpdater.js';

const [manifestUrl, dir] = process.argv.slice(2);
const updater = createModelUpdater({ manifestUrl: manifestUrl!, dir: dir!, policy: { checkOnStart: false }, retry: { manifestRetries: 0 }, allowUnsigned: true });
process.stdout.write('ready\n');
await updater.start();
const result = await updater.check();
updater.stop();
process.stdout.write(`${JSON.stringify(result)}\n`);
