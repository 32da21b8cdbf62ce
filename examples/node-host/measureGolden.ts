/**
 * The publisher's step before `publish`: plays the golden tone through a model and prints the metadata
 * to publish with it (its state layout and its speech probabilities on the tone).
 *
 *   npx tsx examples/node-host/measureGolden.ts <model.onnx> > metadata.json
 *   model-updater publish ... --metadata metadata.json <model.onnx>
 */
import { measureGolden } from './golden.js';
import { openVadModel } from './vadModel.js';

const [file] = process.argv.slice(2);
if (!file) {
  console.error('usage: npx tsx examples/node-host/measureGolden.ts <model.onnx> > metadata.json');
  process.exit(2);
}
const model = await openVadModel(file);
console.log(JSON.stringify(await measureGolden(model), null, 2));
await model.release();
