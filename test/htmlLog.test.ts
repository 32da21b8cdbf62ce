/**
 * `model-updater log --html <file>`: one self-contained page of the event log, opened in real headless
 * Chromium with the network cut off (offline, and every request refused and recorded): it draws the
 * chart with every state, counts the records, and stepping moves the highlight.
 */
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { updaterMachine } from '../src/index.js';
import { activeStateIds, logPageData, MAX_PAYLOAD_CHARS } from '../src/inspect/htmlLog.js';
import { statechartGraph, type StateBox } from '../src/inspect/statechartGraph.js';
import { readAllRecords } from '../src/node/logSegments.js';
import { FileEventLog } from '../src/node/fileEventLog.js';
import { createWorld, type World } from './helpers/fixtures.js';
import { writeLongLog } from './helpers/longLog.js';
import { runCli } from './helpers/runCli.js';
import { CHROMIUM, chromiumProgram } from './helpers/systemPrograms.js';

let world: World;
beforeEach(async () => {
  world = await createWorld();
});
afterEach(async () => {
  await world.close();
});

const allStates = (box: StateBox): StateBox[] => box.children.flatMap((child) => [child, ...allStates(child)]);

/** What the page should highlight after each record: the innermost active states. */
const innermost = (active: string[]) => active.filter((id) => !active.some((other) => other.startsWith(`${id}.`)));

describe('the page data', () => {
  it('keeps every record with its session, time and the states active after it', async () => {
    const count = await writeLongLog(world, 0);
    const data = logPageData(readAllRecords(world.dir));
    expect(data.records.length).toBe(count);
    expect(data.sessions.length).toBe(2);
    const last = data.records.at(-1)!;
    expect(data.types[last[3]]).toBe('rollback.completed');
    expect(data.activeSets[last[4]]).toEqual(['rolledBack']);
    const states = data.records.map((r) => innermost(data.activeSets[r[4]]!).join());
    expect(states).toContain('migrating.checkingHealth');
    expect(states).toContain('downloading.fetching');
    expect(data.records.map((r) => r[1])).toEqual([...readAllRecords(world.dir)].map((r) => r.ts));
  });

  it('cuts a very large payload, saying how to see all of it', async () => {
    await writeLongLog(world, 0);
    const log = FileEventLog.open(join(world.dir, 'events.log'));
    log.append('log.note', null, { text: 'x'.repeat(3 * MAX_PAYLOAD_CHARS) });
    log.close();
    const payload = logPageData(readAllRecords(world.dir)).records.at(-1)![6];
    expect(payload.length).toBeLessThan(MAX_PAYLOAD_CHARS + 200);
    expect(payload).toMatch(/more characters; `model-updater log --json` prints all of it\)$/);
  });

  it('reads nested state values as ids with their ancestors', () => {
    expect(activeStateIds('idle')).toEqual(['idle']);
    expect(activeStateIds({ downloading: 'fetching' })).toEqual(['downloading', 'downloading.fetching']);
  });
});

describe('model-updater log --html', () => {
  it('refuses a folder with no event log and writes nothing', async () => {
    const file = join(world.root, 'log.html');
    const result = await runCli(['log', '--dir', join(world.root, 'nothing-here'), '--html', file, '--json']);
    expect(result.code).toBe(1);
    expect(result.json.error).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('There is no event log in') });
    expect(existsSync(file)).toBe(false);
  });
});

const program = chromiumProgram();

describe.skipIf(program.skip)('the log --html page in Chromium with the network cut off', () => {
  let browser: Browser;
  beforeAll(async () => {
    program.require();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  });
  afterAll(async () => {
    await browser?.close();
  });

  /** Opens `file` offline; every request but the file itself is refused and recorded. */
  async function openOffline(file: string): Promise<{ page: Page; requests: string[]; errors: string[] }> {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    await context.setOffline(true);
    const requests: string[] = [];
    const errors: string[] = [];
    const href = pathToFileURL(file).href;
    await context.route('**/*', (route) => (route.request().url() === href ? route.continue() : route.abort()));
    const page = await context.newPage();
    page.on('request', (request) => requests.push(request.url()));
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(href);
    return { page, requests, errors };
  }

  const highlighted = (page: Page) => page.$$eval('#chart .state.current', (nodes) => nodes.map((n) => n.getAttribute('data-state')));

  it('draws the chart with every state, counts the records, and stepping moves the highlight', async () => {
    const count = await writeLongLog(world, 0);
    const file = join(world.root, 'log.html');
    const result = await runCli(['log', '--dir', world.dir, '--html', file, '--json']);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.json).toMatchObject({ ok: true, file, records: count, sessions: 2 });

    const { page, requests, errors } = await openOffline(file);
    try {
      // Every state of the machine is drawn, with its name.
      for (const state of allStates(statechartGraph(updaterMachine).root)) {
        expect(await page.textContent(`#chart [data-state="${state.id}"] > text`)).toBe(state.key);
      }
      expect(await page.textContent('#count')).toBe(`${count} records, 2 sessions`);
      expect(await page.textContent('#position')).toBe(`1 / ${count}`);

      const data = logPageData(readAllRecords(world.dir));
      const expected = (step: number) => innermost(data.activeSets[data.records[step]![4]]!);
      expect(await highlighted(page)).toEqual(expected(0));

      // Stepping with the keyboard and the buttons moves the highlight as the chart moved.
      const firstChange = data.records.findIndex((r) => r[4] !== data.records[0]![4]);
      for (let step = 0; step < firstChange; step++) await page.keyboard.press('ArrowRight');
      expect(await page.textContent('#position')).toBe(`${firstChange + 1} / ${count}`);
      expect(await highlighted(page)).toEqual(expected(firstChange));
      expect(expected(firstChange)).not.toEqual(expected(0));

      await page.click('#next-change');
      const secondChange = data.records.findIndex((r, index) => index > firstChange && r[4] !== data.records[firstChange]![4]);
      expect(await highlighted(page)).toEqual(expected(secondChange));
      await page.click('#prev');
      expect(await highlighted(page)).toEqual(expected(secondChange - 1));
      await page.keyboard.press('End');
      expect(await highlighted(page)).toEqual(['rolledBack']);
      expect(await page.textContent('#type')).toBe('rollback.completed');
      expect(await page.textContent('#session')).toBe(data.sessions[1]);
      await page.keyboard.press('Home');
      expect(await highlighted(page)).toEqual(expected(0));

      // The row list shows sessions and times; a click on a row goes to it.
      await page.click(`#rows .row[data-index="${firstChange}"]`);
      expect(await page.textContent('#time')).toBe(data.records[firstChange]![1]);

      expect(errors).toEqual([]);
      expect(requests).toEqual([pathToFileURL(file).href]);
    } finally {
      await page.context().close();
    }
  });

  it('opens a 10,000-record log and steps through it', async () => {
    const count = await writeLongLog(world, 10_000);
    const file = join(world.root, 'long.html');
    const result = await runCli(['log', '--dir', world.dir, '--html', file, '--json']);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.json.bytes).toBeLessThan(2_000_000);
    expect((await stat(file)).size).toBe(result.json.bytes);

    const { page, requests, errors } = await openOffline(file);
    try {
      expect(await page.textContent('#count')).toBe(`${count} records, 2 sessions`);
      // Only the rows in view are in the document.
      expect(await page.$$eval('#rows .row', (rows) => rows.length)).toBeLessThan(100);
      await page.keyboard.press('Shift+ArrowRight');
      const after = await highlighted(page);
      await page.keyboard.press('End');
      expect(await page.textContent('#position')).toBe(`${count} / ${count}`);
      expect(await highlighted(page)).toEqual(['rolledBack']);
      expect(after).not.toEqual(['rolledBack']);
      expect(errors).toEqual([]);
      expect(requests).toEqual([pathToFileURL(file).href]);
    } finally {
      await page.context().close();
    }
  }, 60_000);
});
