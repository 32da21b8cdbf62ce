/**
 * The browser example: keeps a model in IndexedDB current, shows progress, survives a reload mid-download
 * (the log restores the state, the stored bytes resume the download), refuses a version that fails its
 * health check and keeps the one it had, and opens the Stately inspector (live, with the past of the log
 * replayed into it). A button asks the example's server to publish the next version of the story.
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
  type SessionResult,
  type UpdaterSnapshot,
} from '../../src/browser/index.js';
import { assertHealthy, parseModel, predict, GOLDEN_INPUT, type LinearModel } from './model.js';

const params = new URLSearchParams(location.search);
const $ = (id: string) => document.getElementById(id)!;
const button = (id: string) => $(id) as HTMLButtonElement;
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
    load: async (model): Promise<LinearModel> => parseModel(await (await updater.store.openFile(model.version, 'model.json')).text()),
    healthCheck: (_model, linear) => assertHealthy(linear),
  },
});

/** Megabytes with one decimal: what a person reads on a progress bar. */
const mb = (bytes: number) => (bytes / 1_000_000).toFixed(1);

function statePath(snapshot: UpdaterSnapshot): string {
  const walk = (value: unknown): string =>
    typeof value === 'string' ? value : Object.entries(value as Record<string, unknown>).map(([key, inner]) => `${key}.${walk(inner)}`).join(',');
  return walk(snapshot.value);
}

/** What the updater is doing, in words. */
function describeState(path: string, snapshot: UpdaterSnapshot): string {
  const candidate = snapshot.context.candidate?.version;
  const states: Record<string, string> = {
    'idle.ready': 'Waiting: click "Check for update".',
    'idle.deferred': navigator.onLine ? 'The update server did not answer; the check tries again after a pause.' : 'Offline: the check tries again after a pause, or click "Check for update" when you are back online.',
    checking: 'Asking the update server for a newer version.',
    deciding: 'Choosing the version to install.',
    awaitingApproval: `Waiting for your approval to install ${candidate}.`,
    'downloading.retryWait': `The download of ${candidate} was interrupted; it resumes after a pause (or reload the page: it resumes from the stored bytes).`,
    'downloading.waitingForConditions': `The download of ${candidate} waits for its conditions (${snapshot.context.blockedBy?.join(', ')}).`,
    downloading: `Downloading ${candidate}.`,
    verifying: `Checking the downloaded files of ${candidate} against their hashes.`,
    migrating: `Installing ${candidate}: loading it and running its health check.`,
    rollingBack: 'Going back to the version that worked.',
    active: `Up to date with ${updater.active?.version}.`,
    staged: 'A version is staged for the next start.',
    rolledBack: `Running ${updater.active?.version ?? 'no model'}, the version that worked.`,
  };
  return states[path] ?? states[path.split('.')[0]!] ?? path;
}

/** The last session's outcome, in words a person understands. */
function describeResult(result: SessionResult | null): string {
  if (!result) return updater.active ? `Running ${updater.active.version}.` : 'No model yet: click "Check for update".';
  const { outcome, version, error } = result;
  const active = updater.active?.version;
  switch (outcome) {
    case 'activated':
      return `Installed ${version}: it passed its health check and now answers.`;
    case 'up-to-date':
      return `Up to date: the server offers nothing newer than ${active ?? 'what is installed'}${updater.getSnapshot().context.quarantine.length ? ' (versions refused here are not taken again)' : ''}.`;
    case 'rolled-back':
      return error ? `${version} was refused: ${error.message} ${active ? `${active} is still active.` : 'No model is active.'}` : `Rolled back to ${active} by hand.`;
    case 'failed':
      return `The update failed: ${error?.message ?? 'unknown error'} ${active ? `${active} is still active.` : ''}`.trim();
    case 'cancelled':
      return 'The update was cancelled; the bytes already downloaded are kept for the next try.';
    default:
      return `${outcome}${version ? ` ${version}` : ''}${error ? `: ${error.message}` : ''}`;
  }
}

/** A check that could not reach the server waits in idle.deferred and tries again: say why. */
function describeDeferred(snapshot: UpdaterSnapshot): string {
  if (!navigator.onLine) return 'You are offline: the check could not reach the update server. Connect again and click "Check for update" (it also retries by itself).';
  return `Could not reach the update server: ${snapshot.context.error?.message ?? 'no answer'}`;
}

/** Why a build was quarantined, in words (the code stays beside it). */
const QUARANTINE_REASONS: Record<string, string> = {
  HEALTH_CHECK_FAILED: 'its health check failed',
  LOAD_FAILED: 'it did not load',
  MIGRATION_FAILED: 'migrating to it failed',
  HOOK_TIMEOUT: 'a hook took too long',
  ROLLED_BACK_BY_USER: 'you rolled back from it',
};

function renderQuarantine(snapshot: UpdaterSnapshot): void {
  const list = $('quarantine');
  const quarantined = snapshot.context.quarantine;
  list.replaceChildren(
    ...(quarantined.length === 0
      ? [Object.assign(document.createElement('li'), { textContent: 'none' })]
      : quarantined.map((bad) => {
          const item = document.createElement('li');
          item.textContent = `${bad.version}: ${QUARANTINE_REASONS[bad.reason] ?? 'it failed here'} (${bad.reason}, left ${bad.count} time${bad.count === 1 ? '' : 's'}) `;
          const release = Object.assign(document.createElement('button'), { textContent: 'Allow again' });
          release.addEventListener('click', () => {
            updater.release(bad.version);
            void render();
          });
          item.append(release);
          return item;
        })),
  );
}

/** Draws what is committed: the log is flushed to IndexedDB before the screen shows a state. */
async function render(): Promise<void> {
  await updater.flush();
  const snapshot = updater.getSnapshot();
  const path = statePath(snapshot);
  $('state').textContent = path;
  $('state-text').textContent = describeState(path, snapshot);
  $('active').textContent = updater.active?.version ?? 'none';
  $('prediction').textContent = updater.model ? String(predict(updater.model, GOLDEN_INPUT)) : '-';
  const result = snapshot.context.lastResult;
  $('result').textContent = result ? `${result.outcome} ${result.version ?? ''} ${result.error?.code ?? ''}`.trim() : '-';
  $('message').textContent = path === 'idle.deferred' ? describeDeferred(snapshot) : describeResult(result);
  renderQuarantine(snapshot);
  // Follow the end of the log, unless the reader scrolled up to read something.
  const log = $('log');
  const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
  log.textContent = updater.log.records().map(formatRecord).join('\n');
  if (atEnd) log.scrollTop = log.scrollHeight;
  button('rollback').disabled = snapshot.context.retained.length === 0;
}

/** A click that failed: its message until the next change of state. */
function showError(error: unknown): void {
  $('message').textContent = isUpdateError(error) ? error.message : `Something went wrong: ${String(error)}`;
  $('result').textContent = isUpdateError(error) ? `error ${error.code}: ${error.message}` : String(error);
}

updater.on('progress', (p) => {
  const fraction = p.total ? p.bytes / p.total : 0;
  ($('progress') as HTMLProgressElement).value = fraction;
  $('progress').dataset.bytes = String(p.bytes); // for the example's test
  $('progress-text').textContent = `${p.version}: ${mb(p.bytes)} of ${mb(p.total)} MB (${Math.floor(fraction * 100)} %)`;
});

// The server's side of the story: what is published, and a button that publishes the next version.
const publisher = new URL('/publish-next', location.href);
function showPublished(status: { published: string[]; next: { version: string; note: string } | null }): void {
  $('published').textContent = status.published.join(', ') || 'nothing';
  button('publish').textContent = status.next ? `Publish ${status.next.version} on the server` : 'Everything is published';
  button('publish').disabled = status.next === null;
  $('publish-note').textContent = status.next ? `(${status.next.note})` : '';
}
async function askPublisher(method: 'GET' | 'POST'): Promise<void> {
  try {
    const answer = await fetch(publisher, { method });
    if (!answer.ok) throw new Error(`the server answered ${answer.status}`);
    const status = await answer.json();
    showPublished(status);
    if (method === 'POST') $('message').textContent = `The server published ${status.published.at(-1)}. Click "Check for update".`;
  } catch (error) {
    $('publish-note').textContent = navigator.onLine
      ? `The example server cannot publish (${(error as Error).message}): run npx tsx examples/browser/serve.ts.`
      : 'You are offline: the example server cannot be reached.';
  }
}
$('publish').addEventListener('click', () => void askPublisher('POST'));

const showConnection = () => {
  $('offline').hidden = navigator.onLine;
  if (document.body.dataset.ready === 'true') void render();
};
addEventListener('online', showConnection);
addEventListener('offline', showConnection);
showConnection();

$('check').addEventListener('click', () => {
  if (!navigator.onLine) $('message').textContent = 'You are offline: checking anyway, the check will wait and retry.';
  void updater.check().catch(showError);
});
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

void askPublisher('GET');
try {
  await updater.start();
  const estimate = await navigator.storage?.estimate?.();
  $('storage').textContent = `${updater.store.persisted ? 'persistent' : 'best-effort (the browser may clear it under pressure)'}; ${mb(estimate?.usage ?? 0)} MB used of ${mb(estimate?.quota ?? 0)} MB allowed`;
  updater.subscribe(() => void render());
  await render();
  for (const id of ['check', 'inspect', 'reset']) button(id).disabled = false;
  document.body.dataset.ready = 'true';
} catch (error) {
  showError(error);
  $('state').textContent = 'not started';
  $('state-text').textContent = 'The updater did not start.';
  document.body.dataset.ready = 'false';
}
