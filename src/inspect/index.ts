/**
 * `model-updater/inspect`: bridges to the Stately inspector. They need the optional peer dependencies
 * `@statelyai/inspect` (and `ws` for the WebSocket bridge); a host that does not import this entry point
 * never loads them.
 */
export { replayIntoInspector, type InspectTarget } from './replayIntoInspector.js';
export { connectWebSocketInspector, type WebSocketInspector } from './webSocketInspector.js';
export { startInspectorRelay, type InspectorRelay, type InspectorRelayOptions } from './inspectorRelay.js';
export { htmlLog, logPageData, type HtmlLog, type LogPageData } from './htmlLog.js';
