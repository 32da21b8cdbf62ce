/**
 * The README's statechart diagram is generated from the machine; this fails when it is stale.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { CHART_SVG_MODULE, chartSvgModule, machineToMermaid, withDiagram } from '../scripts/diagram.js';
import { STATECHART_SVG } from '../src/inspect/statechartSvg.generated.js';
import { statechartGraph } from '../src/inspect/statechartGraph.js';
import { updaterMachine } from '../src/index.js';

describe('README diagram', () => {
  it('is the one generated from machines/updater.machine.ts (run `npm run diagram` to update it)', async () => {
    const readme = await readFile('README.md', 'utf8');
    expect(readme, 'README.md\'s diagram is stale: run `npm run diagram`').toBe(withDiagram(readme, machineToMermaid(updaterMachine)));
  });

  it('names every state of the machine and draws an arrow into each non-initial one', () => {
    const diagram = machineToMermaid(updaterMachine);
    const states: string[] = [];
    const walk = (node: { path: string[]; states: Record<string, any> }) => {
      for (const child of Object.values(node.states)) {
        states.push(child.path.join('_'));
        walk(child);
      }
    };
    walk(updaterMachine.root);
    for (const state of states) expect(diagram).toContain(` as ${state}`);
    for (const state of ['checking', 'deciding', 'downloading', 'verifying', 'migrating', 'active', 'rollingBack', 'rolledBack']) {
      expect(diagram).toMatch(new RegExp(`--> ${state}:`));
    }
  });

  it('the chart in `log --html` pages is drawn from the same reading of the machine and is current (run `npm run diagram` to update it)', async () => {
    expect(await readFile(CHART_SVG_MODULE, 'utf8'), 'src/inspect/statechartSvg.generated.ts is stale: run `npm run diagram`').toBe(await chartSvgModule(updaterMachine));
    const { arrows } = statechartGraph(updaterMachine);
    for (const arrow of arrows) expect(STATECHART_SVG).toContain(`data-from="${arrow.source}" data-to="${arrow.target}"`);
  });
});
