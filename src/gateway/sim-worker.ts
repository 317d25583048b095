// The simulator's worker thread (see sim-api.ts): parses one uploaded trace, sweeps every policy over it and
// draws the Pareto chart, off the server's event loop; answers once with the points or the error's code.
// Imports src/sim and node built-ins.
import { parentPort, workerData } from 'node:worker_threads';
import { ThawError } from '../core/errors.ts';
import { paretoSvg, parseAzureTrace, sweep, type SimModel, type TraceFile, type PathCosts, type Trace } from '../sim/index.ts';

export interface SimJob {
  readonly name: string;
  readonly invocations: TraceFile;
  readonly durations?: TraceFile;
  readonly memory?: TraceFile;
  readonly model: SimModel;
  readonly costs: PathCosts;
}

/** What one run may take: the sweep replays the trace 18 times, each invocation an arrival. */
export const SIM_LIMITS = { functions: 1000, minutes: 1440, invocations: 500_000 } as const;

/** The trace's invocation count; THAW_E_SIM_TOO_LARGE past the limits, before any replay. */
export function checkTraceSize(trace: Trace): number {
  const invocations = trace.functions.reduce((s, f) => s + f.perMinute.reduce((a, n) => a + n, 0), 0);
  const over = trace.functions.length > SIM_LIMITS.functions ? `${trace.functions.length} functions (at most ${SIM_LIMITS.functions})`
    : trace.minutes > SIM_LIMITS.minutes ? `${trace.minutes} minutes (at most ${SIM_LIMITS.minutes})`
    : invocations > SIM_LIMITS.invocations ? `${invocations} invocations (at most ${SIM_LIMITS.invocations})` : null;
  if (over) throw new ThawError('THAW_E_SIM_TOO_LARGE', `the trace has ${over} to simulate here`);
  return invocations;
}

const job = workerData as SimJob;
try {
  const trace = parseAzureTrace(job);
  const invocations = checkTraceSize(trace);
  const points = sweep(trace, { model: job.model, costs: job.costs, freezeAfterMs: 10_000 });
  const title = `Policies on ${trace.name}: ${trace.functions.length} functions, ${trace.minutes} min`;
  parentPort!.postMessage({
    ok: true,
    trace: { name: trace.name, functions: trace.functions.length, minutes: trace.minutes, invocations },
    points: points.map((p) => ({ family: p.family, knob: p.knob, ...p.result, perFunction: undefined })),
    svg: paretoSvg(points, title),
  });
} catch (err) {
  const e = err instanceof ThawError ? err : null;
  parentPort!.postMessage({ ok: false, code: e?.code ?? 'THAW_E_INTERNAL', message: (err as Error)?.message ?? String(err) });
}
