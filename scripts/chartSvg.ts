/**
 * The statechart as an SVG drawing, for `log --html` pages: `statechartGraph`'s boxes and arrows (the
 * README diagram's own reading of the machine) laid out by ELK's layered algorithm. ELK runs here, when
 * `npm run diagram` writes src/inspect/statechartSvg.generated.ts, so the package ships the drawing and
 * no layout engine.
 */
import elk, { type ElkExtendedEdge, type ElkLabel, type ElkNode } from 'elkjs/lib/elk.bundled.js';
import type { AnyStateMachine } from 'xstate';
import { statechartGraph, type StateBox } from '../src/inspect/statechartGraph.js';

const STATE_FONT = 13;
const LABEL_FONT = 10;
/** Monospace glyphs are 0.6 em wide: text sizes are known without measuring them in a browser. */
const CHAR = 0.6;
const INITIAL = 10;

const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const round = (value: number) => Math.round(value * 10) / 10;

function toElk(box: StateBox, arrows: ReturnType<typeof statechartGraph>['arrows']): ElkNode {
  const compound = box.children.length > 0;
  const children: ElkNode[] = box.children.map((child) => toElk(child, arrows));
  const edges: ElkExtendedEdge[] = [];
  if (box.initial) {
    children.unshift({ id: `initial:${box.id}`, width: INITIAL, height: INITIAL });
    edges.push({ id: `initial-edge:${box.id}`, sources: [`initial:${box.id}`], targets: [box.initial] });
  }
  for (const arrow of arrows) {
    if (arrow.parent !== box.id) continue;
    const labels: ElkLabel[] = [{ text: arrow.labels.join('\n'), width: Math.max(...arrow.labels.map((l) => l.length)) * LABEL_FONT * CHAR + 4, height: arrow.labels.length * (LABEL_FONT + 2) + 2 }];
    edges.push({ id: `${arrow.source}->${arrow.target}`, sources: [arrow.source], targets: [arrow.target], labels });
  }
  const node: ElkNode = { id: box.id || 'root', children, edges };
  if (box.id === '') return node;
  if (!compound) return { ...node, width: Math.max(64, box.key.length * STATE_FONT * CHAR + 28), height: 34 };
  return { ...node, layoutOptions: { 'elk.padding': `[top=${STATE_FONT + 22},left=14,bottom=14,right=14]` } };
}

function boxes(box: StateBox): StateBox[] {
  return [box, ...box.children.flatMap(boxes)];
}

/**
 * An SVG of the machine's states and transitions. Each state is a `<g class="state" data-state="<path>">`
 * (`downloading.fetching`), so a page can mark the active ones.
 * @example
 * const svg = await statechartSvg(updaterMachine)
 */
export async function statechartSvg(machine: AnyStateMachine): Promise<string> {
  const graph = statechartGraph(machine);
  const layout = await new elk.default().layout(toElk(graph.root, graph.arrows), {
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'DOWN',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.edgeRouting': 'ORTHOGONAL',
      'elk.edgeLabels.inline': 'false',
      'elk.spacing.nodeNode': '28',
      'elk.spacing.edgeLabel': '3',
      'elk.layered.spacing.nodeNodeBetweenLayers': '36',
      'elk.layered.spacing.edgeNodeBetweenLayers': '14',
      'elk.layered.nodePlacement.strategy': 'NETWORK_SIMPLEX',
      'elk.layered.mergeEdges': 'true',
      'elk.json.shapeCoords': 'ROOT',
      'elk.json.edgeCoords': 'ROOT',
    },
  });
  const compound = new Set(boxes(graph.root).filter((b) => b.children.length > 0).map((b) => b.id));
  const keys = new Map(boxes(graph.root).map((b) => [b.id, b.key]));
  const arrowOf = new Map(graph.arrows.map((arrow) => [`${arrow.source}->${arrow.target}`, arrow]));
  const shapes: string[] = [];
  const lines: string[] = [];
  const visit = (node: ElkNode) => {
    for (const child of node.children ?? []) {
      const x = round(child.x ?? 0);
      const y = round(child.y ?? 0);
      const w = round(child.width ?? 0);
      const h = round(child.height ?? 0);
      if (child.id.startsWith('initial:')) {
        shapes.push(`<circle class="initial" cx="${round(x + w / 2)}" cy="${round(y + h / 2)}" r="${INITIAL / 2}"/>`);
      } else if (compound.has(child.id)) {
        shapes.push(
          `<g class="state compound" data-state="${escapeXml(child.id)}"><rect x="${x}" y="${y}" width="${w}" height="${h}" rx="10"/><text x="${round(x + 12)}" y="${round(y + STATE_FONT + 8)}">${escapeXml(keys.get(child.id)!)}</text></g>`,
        );
      } else {
        shapes.push(
          `<g class="state" data-state="${escapeXml(child.id)}"><rect x="${x}" y="${y}" width="${w}" height="${h}" rx="8"/><text x="${round(x + w / 2)}" y="${round(y + h / 2 + STATE_FONT * 0.35)}" text-anchor="middle">${escapeXml(keys.get(child.id)!)}</text></g>`,
        );
      }
      visit(child);
    }
    for (const edge of node.edges ?? []) {
      for (const section of edge.sections ?? []) {
        const points = [section.startPoint, ...(section.bendPoints ?? []), section.endPoint].map((p) => `${round(p.x)},${round(p.y)}`);
        const arrow = arrowOf.get(edge.id);
        const ends = arrow ? ` data-from="${escapeXml(arrow.source)}" data-to="${escapeXml(arrow.target)}"` : '';
        lines.push(`<polyline class="transition"${ends} points="${points.join(' ')}"/>`);
      }
      for (const label of edge.labels ?? []) {
        const tspans = (label.text ?? '').split('\n').map((line, index) => `<tspan x="${round((label.x ?? 0) + 2)}" dy="${index === 0 ? LABEL_FONT : LABEL_FONT + 2}">${escapeXml(line)}</tspan>`);
        lines.push(`<text class="event" y="${round(label.y ?? 0)}">${tspans.join('')}</text>`);
      }
    }
  };
  visit(layout);
  const width = Math.ceil(layout.width ?? 0);
  const height = Math.ceil(layout.height ?? 0);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" class="statechart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeXml(machine.id)} statechart">`,
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z"/></marker></defs>',
    ...shapes,
    ...lines,
    '</svg>',
  ].join('\n');
}
