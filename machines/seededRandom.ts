/**
 * Repeatable randomness from a seed (pure-rand's xoroshiro128+): the chart's back-off jitter, the
 * simulator's world and the fleet benchmark draw from it, so a run can be replayed from its seed.
 */
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

/**
 * A generator of numbers in [0, 1).
 * @example
 * const random = seededRandom(42); random() // the same sequence every run
 */
export function seededRandom(seed: number): () => number {
  const generator = xoroshiro128plus(seed | 0);
  return () => uniformFloat64(generator);
}

/** The `index`-th draw, in [0, 1), of the stream a fraction in [0, 1) seeds: pure, for use in guards and delays. */
export function drawFromSeed(seed: number, index: number): number {
  const random = seededRandom(Math.floor(seed * 2 ** 31));
  let value = random();
  for (let i = 1; i < index; i++) value = random();
  return value;
}
