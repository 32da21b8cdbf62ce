/**
 * The statechart as boxes and arrows, read from the machine with xstate/graph: the one reading that
 * both the README's Mermaid diagram (scripts/diagram.ts) and the chart in `log --html` pages are drawn
 * from.
 */
import type { AnyStateMachine, AnyStateNode } from 'xstate';
import { toDirectedGraph, type DirectedGraphNode } from 'xstate/graph';

export interface StateBox {
  /** The state's path, dot-joined (`downloading.fetching`); '' for the root. */
  id: string;
  path: string[];
  /** The state's own name (`fetching`). */
  key: string;
  /** The child entered first, by id, for a compound state. */
  initial?: string;
  children: StateBox[];
}

export interface StateArrow {
  /** The state the arrow is drawn inside (the two states' deepest common ancestor), by id. */
  parent: string;
  source: string;
  target: string;
  /** Every event (with its guard) that takes this transition, e.g. `done: fetchManifest [hasUpdate]`. */
  labels: string[];
}

export interface StatechartGraph {
  root: StateBox;
  /** One arrow per pair of sibling states, in the order the machine declares their transitions. */
  arrows: StateArrow[];
}

/** A short reading of an event type: `done: fetchManifest`, `error: verifyStaged`, `after retryDelay`. */
function eventLabel(type: string): string {
  const done = /^xstate\.done\.actor\.(.+)$/.exec(type);
  if (done) return `done: ${done[1]}`;
  const error = /^xstate\.error\.actor\.(.+)$/.exec(type);
  if (error) return `error: ${error[1]}`;
  const after = /^xstate\.after\.([^.]+)\./.exec(type);
  if (after) return `after ${after[1]}`;
  return type;
}

function guardLabel(guard: unknown): string {
  if (!guard) return '';
  const name = typeof guard === 'string' ? guard : (guard as { type?: string }).type;
  return name ? ` [${name}]` : '';
}

interface Edge {
  source: AnyStateNode;
  target: AnyStateNode;
  label: string;
}

/** Every transition of the chart, eventless (`always`) ones included, which the directed graph leaves out. */
function collectEdges(node: DirectedGraphNode, edges: Edge[] = []): Edge[] {
  for (const edge of node.edges) {
    edges.push({ source: edge.source, target: edge.target, label: eventLabel(edge.label.text) + guardLabel(edge.transition.guard) });
  }
  for (const transition of node.stateNode.always ?? []) {
    for (const target of transition.target ?? []) {
      edges.push({ source: node.stateNode, target, label: `always${guardLabel(transition.guard)}` });
    }
  }
  for (const child of node.children) collectEdges(child, edges);
  return edges;
}

/** `node` and its ancestors, innermost first. */
function lineage(node: AnyStateNode): AnyStateNode[] {
  const nodes: AnyStateNode[] = [];
  for (let current: AnyStateNode | undefined = node; current; current = current.parent) nodes.push(current);
  return nodes;
}

/**
 * Moves an edge up to the two states under the deepest common ancestor (diagrams draw no arrow between
 * states of different composite states); returns that ancestor too.
 */
function lift(edge: Edge): { parent: AnyStateNode; source: AnyStateNode; target: AnyStateNode } {
  const targetLine = lineage(edge.target);
  const sourceLine = lineage(edge.source);
  const parent = sourceLine.find((node) => targetLine.includes(node) && node !== edge.source && node !== edge.target) ?? sourceLine.at(-1)!;
  const under = (line: AnyStateNode[]) => line[line.indexOf(parent) - 1] ?? line[0]!;
  return { parent, source: under(sourceLine), target: under(targetLine) };
}

const idOf = (node: AnyStateNode) => node.path.join('.');

function box(node: AnyStateNode): StateBox {
  const initial = node.initial?.target?.[0];
  return {
    id: idOf(node),
    path: [...node.path],
    key: node.path.length === 0 ? node.machine.id : node.key,
    ...(initial ? { initial: idOf(initial) } : {}),
    children: (Object.values(node.states) as AnyStateNode[]).map(box),
  };
}

/**
 * The machine's states and arrows. Self-transitions and transitions of the root (context updates such as
 * CONFIGURE) are left out: they do not move the chart.
 * @example
 * statechartGraph(updaterMachine).arrows.find((a) => a.target === 'rolledBack')
 */
export function statechartGraph(machine: AnyStateMachine): StatechartGraph {
  const graph = toDirectedGraph(machine);
  const root = graph.stateNode;
  const arrows = new Map<string, StateArrow>();
  for (const edge of collectEdges(graph)) {
    if (edge.source === root || edge.source === edge.target || edge.target === root) continue;
    const { parent, source, target } = lift(edge);
    if (source === target) continue;
    const key = `${idOf(source)} --> ${idOf(target)}`;
    const arrow = arrows.get(key) ?? { parent: idOf(parent), source: idOf(source), target: idOf(target), labels: [] };
    arrows.set(key, arrow);
    if (!arrow.labels.includes(edge.label)) arrow.labels.push(edge.label);
  }
  return { root: box(root), arrows: [...arrows.values()] };
}
