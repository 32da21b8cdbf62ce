/**
 * Tiny real ONNX models built in code: y = x·W + B (MatMul + Add) on a 1×3 input, run with
 * onnxruntime-web's wasm build (offline, no native install step).
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

export interface LinearWeights {
  /** 3×2, row-major. */
  W: number[];
  /** 2. */
  B: number[];
}

/** The health check's golden pair: x = [1, 0, 0] reads row 0 of W plus B. */
export const GOLDEN_INPUT = [1, 0, 0];
export const GOLDEN_OUTPUT = [1.5, 1.5];

/**
 * Serialises a MatMul + Add model with these weights to ONNX bytes.
 * @example
 * await writeFile('model.onnx', linearModel({ W: [1, 2, 3, 4, 5, 6], B: [0.5, -0.5] }))
 */
export function linearModel({ W, B }: LinearWeights): Uint8Array {
  const tensor = (name: string, dims: number[]) => ({ name, type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((dimValue) => ({ dimValue })) } } } });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'model-updater example',
    graph: {
      name: 'linear',
      node: [
        { opType: 'MatMul', input: ['x', 'W'], output: ['xW'], name: 'matmul' },
        { opType: 'Add', input: ['xW', 'B'], output: ['y'], name: 'add' },
      ],
      initializer: [
        { name: 'W', dataType: FLOAT, dims: [3, 2], floatData: W },
        { name: 'B', dataType: FLOAT, dims: [2], floatData: B },
      ],
      input: [tensor('x', [1, 3])],
      output: [tensor('y', [1, 2])],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}
