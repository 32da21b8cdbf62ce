/**
 * A child process for the kill test of a parallel download: downloads one file by ranges into a model
 * folder and prints every resume record it wrote (`record <json>`), so the parent can SIGKILL it once
 * some spans are durable and recorded.
 *   node --import tsx test/helpers/rangedVictim.ts URL DIR SIZE
 */
import { downloadParallel } from '../../src/core/download/downloadParallel.js';
import type { StagingArea } from '../../src/core/ports/stagingArea.js';
import { FileStagingArea } from '../../src/node/fileStagingArea.js';
import { createNodeTransport } from '../../src/node/nodeTransport.js';

const [url, dir, size] = process.argv.slice(2) as [string, string, string];
const files = new FileStagingArea(dir);
// Every call goes to the real staging area; a written record is announced once it is on disk.
const staging: StagingArea = Object.assign(Object.create(files) as FileStagingArea, {
  openRandomAccess: files.openRandomAccess.bind(files),
  async writeRecord(file: Parameters<StagingArea['writeRecord']>[0], record: Parameters<StagingArea['writeRecord']>[1]) {
    await files.writeRecord(file, record);
    process.stdout.write(`record ${JSON.stringify(record)}\n`);
  },
});
await downloadParallel({ url, file: { version: '1.0.0', path: 'model.bin' }, expectedSize: Number(size), transport: createNodeTransport(), staging });
process.stdout.write('done\n');
