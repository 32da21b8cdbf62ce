/**
 * `model-updater log --html <file>`: one self-contained page of the event log, opened in real headless
 * Chromium with the network cut off (offline, and every request refused and recorded): it draws the
 * chart with every state, counts the records, and stepping moves the highlight.
 */
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
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
import * as inspectEntry from '../src/inspect/index.js';
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
  it('htmlLog from model-updater/inspect makes the page from records read any other way; its policy forbids any request', async () => {
    await writeLongLog(world, 0);
    const records = [...readAllRecords(world.dir)];
    const page = inspectEntry.htmlLog(records, { title: 'a user log' });
    expect(page).toMatchObject({ records: records.length, sessions: 2 });
    expect(page.html).toContain(`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">`);
    expect(page.html).toContain('<title>updater log: a user log</title>');
    expect(page.html).not.toMatch(/<(link|img|iframe)\b|src=|@import|url\(http/);
  });

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

      // The health check's failure: its payload, the chart leaving migrating for rollingBack.
      await page.keyboard.press('ArrowLeft');
      expect(await page.textContent('#type')).toBe('health.failed');
      expect(await page.textContent('#payload')).toContain('"code": "HEALTH_CHECK_FAILED"');
      expect(await highlighted(page)).toEqual(['rollingBack']);
      expect(await page.$$eval('#chart .transition.taken', (arrows) => arrows.map((a) => `${a.getAttribute('data-from')} -> ${a.getAttribute('data-to')}`))).toEqual(['migrating -> rollingBack']);
      await page.keyboard.press('Shift+ArrowLeft');
      expect(await highlighted(page)).toEqual(['migrating.checkingHealth']);
      // An active compound state is marked too, the innermost state more strongly.
      expect(await page.$$eval('#chart .state.active', (nodes) => nodes.map((n) => n.getAttribute('data-state')))).toEqual(['migrating', 'migrating.checkingHealth']);
      await page.keyboard.press('Home');
      expect(await highlighted(page)).toEqual(expected(0));

      // Each session has its own colour on the timeline.
      const colourAt = (fraction: number) =>
        page.$eval('#timeline-canvas', (canvas, f) => {
          const c = canvas as HTMLCanvasElement;
          return [...c.getContext('2d')!.getImageData(Math.round(c.width * f), Math.round(c.height * 0.45), 1, 1).data].join();
        }, fraction);
      const firstSession = data.records.findIndex((r) => r[2] === 0);
      expect(await colourAt((firstSession + 0.5) / (count - 1))).not.toBe(await colourAt(1 - 0.5 / (count - 1)));

      // Every row shows the record's number, time, session and event.
      const row = await page.$$eval(`#rows .row[data-index="${firstSession}"] > span`, (cells) => cells.map((c) => c.textContent));
      const record = data.records[firstSession]!;
      expect(row.slice(0, 4)).toEqual([String(record[0]), record[1], data.sessions[0]!.slice(0, 8), data.types[record[3]]]);

      // The row list shows sessions and times; a click on a row goes to it.
      await page.click(`#rows .row[data-index="${firstChange}"]`);
      expect(await page.textContent('#time')).toBe(data.records[firstChange]![1]);

      expect(errors).toEqual([]);
      expect(requests).toEqual([pathToFileURL(file).href]);
    } finally {
      await page.context().close();
    }
  }, 90_000);

  it('opens a 10,000-record log and steps through it', async () => {
    const count = await writeLongLog(world, 10_000);
    const file = join(world.root, 'long.html');
    const result = await runCli(['log', '--dir', world.dir, '--html', file, '--json']);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.json.bytes).toBeLessThan(1_000_000);
    expect((await stat(file)).size).toBe(result.json.bytes);

    const { page, requests, errors } = await openOffline(file);
    try {
      expect(await page.textContent('#count')).toBe(`${count} records, 2 sessions`);
      // Only the rows in view are in the document.
      expect(await page.$$eval('#rows .row', (rows) => rows.length)).toBeLessThan(100);
      const data = logPageData(readAllRecords(world.dir));
      const changes = data.records.flatMap((r, index) => (index > 0 && r[4] !== data.records[index - 1]![4] ? [index] : []));
      // Shift+→ goes from one change of state to the next: across the 10,000 records where the chart
      // did not move, in one step.
      const beforeFillers = changes.filter((change) => change < 10_000);
      const afterFillers = changes.find((change) => change > 10_000)!;
      for (const change of [...beforeFillers, afterFillers]) {
        await page.keyboard.press('Shift+ArrowRight');
        expect(await page.textContent('#position')).toBe(`${change + 1} / ${count}`);
        expect(await highlighted(page)).toEqual(innermost(data.activeSets[data.records[change]![4]]!));
      }
      await page.keyboard.press('End');
      expect(await page.textContent('#position')).toBe(`${count} / ${count}`);
      expect(await highlighted(page)).toEqual(['rolledBack']);
      expect(errors).toEqual([]);
      expect(requests).toEqual([pathToFileURL(file).href]);
    } finally {
      await page.context().close();
    }
  }, 150_000);

  it('npm run screenshot:log photographs a page of a real log', async () => {
    const out = join(world.root, 'shot.png');
    const child = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/screenshotLog.ts', out], { encoding: 'utf8', timeout: 120_000 });
    expect(child.status, child.stderr).toBe(0);
    const png = await readFile(out);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(png.readUInt32BE(16)).toBe(1400); // width from the IHDR chunk
    expect(JSON.parse(await readFile('package.json', 'utf8')).scripts['screenshot:log']).toBe('tsx scripts/screenshotLog.ts');
  }, 150_000);
});
