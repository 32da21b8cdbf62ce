/**
 * The chart's state tags say what a state is, and code outside the chart asks `hasTag` instead of
 * listing states: these checks tie each tag to the chart's structure, so a new or changed state that
 * needs a tag, or no longer deserves one, fails here.
 */
import { describe, expect, it } from 'vitest';
import type { AnyStateNode } from 'xstate';
import { updaterMachine } from '../src/index.js';

function leaves(node: AnyStateNode = updaterMachine.root): AnyStateNode[] {
  const children = Object.values(node.states);
  return children.length ? children.flatMap((child) => leaves(child)) : [node];
}

/** A leaf and its ancestors, as a snapshot in that leaf has them active. */
function lineage(node: AnyStateNode): AnyStateNode[] {
  const nodes: AnyStateNode[] = [];
  for (let current: AnyStateNode | undefined = node; current; current = current.parent) nodes.push(current);
  return nodes;
}

const path = (node: AnyStateNode) => node.path.join('.');
const hasTag = (node: AnyStateNode, tag: string) => lineage(node).some((n) => n.tags.includes(tag));
const invokes = (node: AnyStateNode) => lineage(node).some((n) => n.invoke.length > 0);
const timed = (node: AnyStateNode) => lineage(node).some((n) => n.after.length > 0);
const transient = (node: AnyStateNode) => (node.always?.length ?? 0) > 0;

describe('state tags', () => {
  it('settled: nothing is invoked; the chart waits for the host (or, deferred, for its timer)', () => {
    const settled = leaves().filter((leaf) => hasTag(leaf, 'settled'));
    expect(settled.map(path).sort()).toEqual(['active', 'awaitingApproval', 'idle.deferred', 'idle.ready', 'rolledBack', 'staged']);
    for (const leaf of settled) expect(invokes(leaf) || transient(leaf), path(leaf)).toBe(false);
  });

  it('checkpointable: exactly the states with no actor, no timer and no eventless step', () => {
    for (const leaf of leaves()) {
      const still = !invokes(leaf) && !timed(leaf) && !transient(leaf) && !hasTag(leaf, 'waiting');
      expect(hasTag(leaf, 'checkpointable'), path(leaf)).toBe(still);
    }
  });

  it('waiting: exactly the states a timer ends, which recovery ends with RETRY_NOW', () => {
    for (const leaf of leaves()) {
      expect(hasTag(leaf, 'waiting'), path(leaf)).toBe(timed(leaf));
      if (timed(leaf)) expect(leaf.on.RETRY_NOW ?? [], path(leaf)).not.toHaveLength(0);
    }
  });

  it('beforeSwitch and decidingActive split the update past verification: every migrating step, then the switch and rollback', () => {
    const tagged = (tag: string) => leaves().filter((leaf) => hasTag(leaf, tag)).map(path).sort();
    expect(tagged('beforeSwitch')).toEqual(['migrating.checkingHealth', 'migrating.loading', 'migrating.migratingData', 'migrating.staging']);
    expect(tagged('decidingActive')).toEqual(['migrating.switching', 'rollingBack']);
  });
});
