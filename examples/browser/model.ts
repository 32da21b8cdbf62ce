/**
 * The example's model: a linear layer y = w·x + b kept as JSON (`model.json`), with a golden input the
 * health check runs. A version published with wrong weights answers the golden input wrongly and is
 * rolled back.
 */
export interface LinearModel {
  w: number[];
  b: number;
}

export const GOLDEN_INPUT = [1, 2, 3];
export const GOLDEN_OUTPUT = 4.5;

/** Good weights for the golden pair (any version may have its own, as long as it answers it). */
export const GOOD_MODEL: LinearModel = { w: [0.5, 0.25, 0.5], b: 2 };

/** y = w·x + b. */
export function predict(model: LinearModel, input: readonly number[]): number {
  return model.w.reduce((sum, weight, i) => sum + weight * (input[i] ?? 0), model.b);
}

/** Whether the model answers the golden input as it should. */
export function isHealthy(model: LinearModel): boolean {
  return Math.abs(predict(model, GOLDEN_INPUT) - GOLDEN_OUTPUT) < 1e-6;
}

/**
 * The health check: throws, saying what the model answered, when it answers the golden input wrongly
 * (the updater puts the message in HEALTH_CHECK_FAILED, which the page shows).
 * @example
 * assertHealthy({ w: [9, 9, 9], b: 0 }) // throws: for the golden input 1, 2, 3 it answers 54, not 4.5
 */
export function assertHealthy(model: LinearModel): void {
  if (!isHealthy(model)) throw new Error(`for the golden input ${GOLDEN_INPUT.join(', ')} it answers ${predict(model, GOLDEN_INPUT)}, not ${GOLDEN_OUTPUT}`);
}

/**
 * Reads and checks `model.json`.
 * @example
 * const model = parseModel(await (await store.openFile(version, 'model.json')).text())
 */
export function parseModel(text: string): LinearModel {
  const value = JSON.parse(text) as Partial<LinearModel>;
  if (!Array.isArray(value.w) || typeof value.b !== 'number') throw new Error('model.json needs "w" (numbers) and "b" (a number)');
  return { w: value.w.map(Number), b: value.b };
}
