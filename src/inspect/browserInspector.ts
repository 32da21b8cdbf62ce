/**
 * The Stately inspector in a popup (or an iframe) that receives every event since the page started.
 * `createBrowserInspector` from @statelyai/inspect holds at most `maxDeferredEvents` (200) events until
 * the inspector window has loaded and says it is ready: any real session overruns that, the first event
 * (the one carrying the chart's definition) is dropped, and the inspector starts mid-story.
 */
import { createBrowserInspector } from '@statelyai/inspect';

export type BrowserInspectorOptions = NonNullable<Parameters<typeof createBrowserInspector>[0]>;

/**
 * `createBrowserInspector(options)` that holds every event for the inspector window, however late it
 * loads. It keeps them for the page's life: meant for a debugging session, not left on in production.
 * @example
 * const inspector = createFullBrowserInspector()
 * replayIntoInspector(await readIdbLog('asr'), inspector.inspect)
 */
export function createFullBrowserInspector(options: BrowserInspectorOptions = {}): ReturnType<typeof createBrowserInspector> {
  return createBrowserInspector({ ...options, maxDeferredEvents: Number.POSITIVE_INFINITY });
}
