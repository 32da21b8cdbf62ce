/**
 * Optional OpenTelemetry spans: one span per update session, an event per state, ended with the
 * outcome. Typed structurally, so hosts pass `trace.getTracer('model-updater')` from @opentelemetry/api
 * without model-updater depending on it.
 */
import type { SessionResult } from '../../machines/types.js';

export interface SpanLike {
  setAttribute(key: string, value: string | number | boolean): unknown;
  addEvent(name: string, attributes?: Record<string, string | number | boolean>): unknown;
  /** OpenTelemetry's SpanStatusCode: 1 OK, 2 ERROR. */
  setStatus(status: { code: number; message?: string }): unknown;
  end(): void;
}

export interface TracerLike {
  startSpan(name: string, options?: { attributes?: Record<string, string | number | boolean> }): SpanLike;
}

/** Follows sessions through the chart's snapshots and reports each as a span. */
export class SessionSpans {
  private readonly open = new Map<string, SpanLike>();

  constructor(private readonly tracer: TracerLike) {}

  /** A state was entered during `sessionId`. */
  state(sessionId: string, trigger: string, state: string): void {
    let span = this.open.get(sessionId);
    if (!span) {
      span = this.tracer.startSpan('model-updater.session', { attributes: { 'model_updater.session_id': sessionId, 'model_updater.trigger': trigger } });
      this.open.set(sessionId, span);
    }
    span.addEvent(state);
  }

  /** The session ended. */
  end(result: SessionResult): void {
    const span = this.open.get(result.sessionId);
    if (!span) return;
    this.open.delete(result.sessionId);
    span.setAttribute('model_updater.outcome', result.outcome);
    if (result.version) span.setAttribute('model_updater.version', result.version);
    if (result.error) span.setAttribute('model_updater.error_code', result.error.code);
    const failed = result.outcome === 'failed' || result.outcome === 'rolled-back';
    span.setStatus(failed ? { code: 2, message: result.error?.message ?? result.outcome } : { code: 1 });
    span.end();
  }
}
