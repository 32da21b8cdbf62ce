/**
 * A child process for the kill test of a differential download: assembles one file from the chunks
 * held in a model folder and the spans it fetches, printing the plan's spans (`plan <json>`) and every
 * resume record it wrote (`record <json>`), so the parent can SIGKILL it once some chunks are durable
 * and recorded.
 *   node --import tsx test/helpers/deltaVictim.ts URL INDEX_URL DIR EXPECTED_JSON
 */
import { deltaDownload, heldContent } from '../../src/core/delta/deltaDownload.js';
import type { StagingArea } from '../../src/core/ports/stagingArea.js';
import { FileStagingArea } from '../../src/node/fileStagingArea.js';
import { FsModelStore } from '../../src/node/fsModelStore.js';
import { createNodeTransport } from '../../src/node/nodeTransport.js';

const [url, indexUrl, dir, expected] = process.argv.slice(2) as [string, string, string, string];
const files = new FileStagingArea(dir);
// Every call goes to the real staging area; a written record is announced once it is on disk.
const staging: StagingArea = Object.assign(Object.create(files) as FileStagingArea, {
  openRandomAccess: files.openRandomAccess.bind(files),
  async writeRecord(file: Parameters<StagingArea['writeRecord']>[0], record: Parameters<StagingArea['writeRecord']>[1]) {
    await files.writeRecord(file, record);
    process.stdout.write(`record ${JSON.stringify(record)}\n`);
  },
});
const store = new FsModelStore(dir);
await deltaDownload({
  url,
  indexUrl,
  expected: JSON.parse(expected) as Parameters<typeof deltaDownload>[0]['expected'],
  file: { version: '2.0.0', path: 'model.safetensors' },
  held: await heldContent(store),
  transport: createNodeTransport(),
  staging,
  store,
  onPlan: (plan) => process.stdout.write(`plan ${JSON.stringify(plan.spans.map(({ start, end }) => [start, end]))}\n`),
});
process.stdout.write('done\n');
