/**
 * A minimal stand-in for the Stately inspector window: receives what `createBrowserInspector` posts and
 * lists it (one line per event: type, and the state for snapshots).
 */
import { createBrowserReceiver } from '@statelyai/inspect';

const events: string[] = [];
createBrowserReceiver().subscribe((event) => {
  const detail = event.type === '@xstate.snapshot' ? JSON.stringify((event.snapshot as { value?: unknown }).value) : event.type === '@xstate.event' ? event.event.type : event.name;
  events.push(`${event.type} ${detail}`);
  document.getElementById('count')!.textContent = String(events.length);
  document.getElementById('events')!.textContent = events.join('\n');
});
