// Telemetry: invocation records, phase spans, logs; Server-Timing and waterfall rendering.
// Public entry of src/telemetry; may import store and core.
export { Recorder, type RecorderOptions } from './recorder.ts';
export { serverTiming, renderWaterfall } from './render.ts';
