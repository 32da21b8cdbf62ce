/**
 * `npm run screenshot:log`: the picture of a `log --html` page in the README (docs/log-html.png). It
 * writes a real log (1.0.0 installed, then 1.1.0 fails its health check and is rolled back, from a
 * loopback update service), turns it into the page, and photographs it in headless Chromium, offline,
 * on the record where 1.1.0 has loaded and its health check runs.
 *
 *   npm run screenshot:log            # docs/log-html.png
 *   tsx scripts/screenshotLog.ts OUT  # elsewhere
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { htmlLog } from '../src/inspect/htmlLog.js';
import { readAllRecords } from '../src/node/logSegments.js';
import { createWorld } from '../test/helpers/fixtures.js';
import { writeLongLog } from '../test/helpers/longLog.js';
import { CHROMIUM, chromiumProgram } from '../test/helpers/systemPrograms.js';

const OUT = process.argv[2] ?? fileURLToPath(new URL('../docs/log-html.png', import.meta.url));

chromiumProgram().require();
const world = await createWorld();
try {
  await writeLongLog(world, 0);
  const file = join(world.root, 'log.html');
  await writeFile(file, htmlLog(readAllRecords(world.dir), { title: '/var/lib/my-app/models' }).html);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  try {
    const context = await browser.newContext({ viewport: { width: 1400, height: 860 } });
    await context.setOffline(true);
    const page = await context.newPage();
    await page.goto(pathToFileURL(file).href);
    await page.keyboard.press('End');
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('ArrowLeft'); // model.loaded: 1.1.0 is in migrating.checkingHealth
    await page.screenshot({ path: OUT });
  } finally {
    await browser.close();
  }
  console.log(`wrote ${OUT}`);
} finally {
  await world.close();
}
