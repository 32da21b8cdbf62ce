/**
 * The browser example: keeps a model in IndexedDB current, shows progress, survives a reload mid-download
 * (the log restores the state, the stored chunks resume the bytes), shows a failed update rolling back,
 * and opens the Stately inspector (live, with the past of the log replayed into it).
 *
 * Query parameters: `manifest` (default ./site/manifest.json), `name` (IndexedDB name, default 'demo'),
 * `retryDelayMs` (download back-off, default 1000), `inspector` (inspector URL, default Stately's).
 */
import { createBrowserInspector } from '@statelyai/inspect';
// In an app: `from 'model-updater/browser'`. Here the repository's source, so the example tracks it.
import {
  createBrowserModelUpdater,
  formatRecord,
  isUpdateError,
  replayIntoInspector,
  type BrowserModelUpdater,
  type UpdaterSnapshot,
} from '../../src/browser/index.js';
import { isHealthy, parseModel, predict, GOLDEN_INPUT, type LinearModel } from './model.js';

const params = new URLSearchParams(location.search);
const $ = (id: string) => document.getElementById(id)!;
let inspector: ReturnType<typeof createBrowserInspector> | undefined;

const updater: BrowserModelUpdater<LinearModel> = createBrowserModelUpdater<LinearModel>({
  manifestUrl: new URL(params.get('manifest') ?? './site/manifest.json', location.href).href,
  name: params.get('name') ?? 'demo',
  appVersion: '1.0.0',
  allowUnsigned: true, // the demo site is unsigned; a real app passes trustedKeys
  policy: { checkOnStart: false },
  retry: { baseDelayMs: Number(params.get('retryDelayMs') ?? 1000), maxDownloadAttempts: 5 },
  progressIntervalMs: 100,
  chunkBytes: 64 * 1024,
  inspect: (event) => inspector?.inspect.next?.(event),
  loader: {
    load: async (model): Promise<LinearModel> => parseModel(await (await updater.store.readFile(model.version, 'model.json')).text()),
    healthCheck: (_model, linear) => isHealthy(linear),
  },
});

function statePath(snapshot: UpdaterSnapshot): string {
  const walk = (value: unknown): string =>
    typeof value === 'string' ? value : Object.entries(value as Record<string, unknown>).map(([key, inner]) => `${key}.${walk(inner)}`).join(',');
  return walk(snapshot.value);
}

/** Draws what is committed: the log is flushed to IndexedDB before the screen shows a state. */
async function render(): Promise<void> {
  await updater.flush();
  const snapshot = updater.getSnapshot();
  $('state').textContent = statePath(snapshot);
  $('active').textContent = updater.active?.version ?? 'none';
  $('prediction').textContent = updater.model ? String(predict(updater.model, GOLDEN_INPUT)) : '-';
  const result = snapshot.context.lastResult;
  $('result').textContent = result ? `${result.outcome} ${result.version ?? ''} ${result.error?.code ?? ''}`.trim() : '-';
  $('log').textContent = updater.log.records().map(formatRecord).join('\n');
  (($('rollback') as HTMLButtonElement).disabled = snapshot.context.retained.length === 0);
}

updater.on('progress', (p) => {
  ($('progress') as HTMLProgressElement).value = p.total ? p.bytes / p.total : 0;
  $('progress-text').textContent = `${p.version}: ${p.bytes} / ${p.total} bytes`;
});

function showError(error: unknown): void {
  $('result').textContent = isUpdateError(error) ? `error ${error.code}: ${error.message}` : String(error);
}

$('check').addEventListener('click', () => void updater.check().catch(showError));
$('rollback').addEventListener('click', () => void updater.rollback().catch(showError));
$('reset').addEventListener('click', async () => {
  updater.stop();
  await updater.store.clear();
  for (const suffix of ['files', 'meta', 'log']) indexedDB.deleteDatabase(`model-updater:${updater.store.name}:${suffix}`);
  location.reload();
});
$('inspect').addEventListener('click', () => {
  const url = params.get('inspector');
  inspector ??= createBrowserInspector(url ? { url: new URL(url, location.href).href } : {});
  // The past comes from the log, replayed with nothing running; from now on live events follow.
  replayIntoInspector(updater.log.records(), inspector.inspect);
});

try {
  await updater.start();
  const estimate = await navigator.storage?.estimate?.();
  $('storage').textContent = `${updater.store.persisted ? 'persistent' : 'best-effort'}; ${estimate?.usage ?? '?'} of ${estimate?.quota ?? '?'} bytes used`;
  updater.subscribe(() => void render());
  await render();
  for (const id of ['check', 'inspect', 'reset']) ($(id) as HTMLButtonElement).disabled = false;
  document.body.dataset.ready = 'true';
} catch (error) {
  showError(error);
  $('state').textContent = 'not started';
  document.body.dataset.ready = 'false';
}
