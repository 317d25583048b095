// POST /thaw/v1/sim: the simulator on an uploaded trace (the dashboard's simulator panel). The trace's CSV
// files come as JSON strings; one worker thread per run parses it, sweeps every policy over it (the same
// sweep and Pareto chart as `thaw sim --sweep`) and is terminated at its time bound, so a large upload
// neither blocks the server nor runs on. One run at a time per node. Imports src/core, src/sim, the
// gateway's plumbing and node built-ins.
import { Worker } from 'node:worker_threads';
import { ThawError, errorRegistry, type ErrorCode } from '../core/errors.ts';
import { SIM_MODELS, type SimModel } from '../sim/index.ts';
import { checkFields, optString, readJson, sendJson, type Router } from './http.ts';
import type { Platform } from './platform.ts';
import type { SimJob } from './sim-worker.ts';

/** The upload's size bound: a day of per-minute counts for a few hundred functions fits well inside. */
export const SIM_MAX_BODY_BYTES = 4 * 1024 * 1024;
/** How long one run may take before its worker is terminated. */
export const SIM_DEADLINE_MS = 60_000;

const FIELDS = ['name', 'invocations', 'durations', 'memory', 'model'] as const;

export function simRoutes(router: Router, platform: Platform, deadlineMs = SIM_DEADLINE_MS): void {
  let running = false;
  router.on('POST', '/thaw/v1/sim', async (ctx) => {
    const body = await readJson(ctx.req, SIM_MAX_BODY_BYTES);
    checkFields('Simulate', body, FIELDS);
    const invocations = optString(body, 'invocations');
    if (!invocations) throw new ThawError('THAW_E_TRACE_INVALID', 'send {"invocations": "<the text of an Azure Functions 2019 invocations CSV>"}, optionally with "durations" and "memory" (the _run and _mem CSVs)');
    const name = (optString(body, 'name') ?? 'upload').replace(/[^\w.-]/g, '_').slice(0, 64) || 'upload';
    const model = (optString(body, 'model') ?? 'invocation') as SimModel;
    if (!SIM_MODELS.includes(model)) throw new ThawError('THAW_E_REQUEST_INVALID', `model must be ${SIM_MODELS.join(' or ')}, got ${JSON.stringify(model)}`);
    const file = (key: string, suffix: string) => {
      const text = optString(body, key);
      return text === undefined ? undefined : { label: `${name}${suffix}`, text };
    };
    if (running) throw new ThawError('THAW_E_SIM_BUSY', 'a simulation is already running on this node');
    running = true;
    try {
      // The node's own tier costs (learned from its starts where it has enough of them), as `thaw why` prices.
      const { learned: _, ...costs } = platform.agent.tierCosts();
      const job: SimJob = { name, invocations: { label: `${name}_inv.csv`, text: invocations }, durations: file('durations', '_run.csv'), memory: file('memory', '_mem.csv'), model, costs };
      const out = await runJob(job, deadlineMs, ctx.signal);
      sendJson(ctx, 200, { ...out, costs });
    } finally {
      running = false;
    }
  });
}

type Reply = { ok: true; trace: unknown; points: unknown[]; svg: string } | { ok: false; code: string; message: string };

/** Runs one job on a fresh worker; rejects at the deadline (terminating it) or when the client goes away. */
function runJob(job: SimJob, deadlineMs: number, signal: AbortSignal): Promise<Omit<Extract<Reply, { ok: true }>, 'ok'>> {
  const worker = new Worker(new URL('./sim-worker.ts', import.meta.url), { workerData: job });
  const { promise, resolve, reject } = Promise.withResolvers<Omit<Extract<Reply, { ok: true }>, 'ok'>>();
  const stop = (err: Error) => { reject(err); void worker.terminate(); };
  const timer = setTimeout(() => stop(new ThawError('THAW_E_SIM_TIMEOUT', `the simulation took longer than ${deadlineMs / 1000} s and was stopped`)), deadlineMs);
  const onAbort = () => stop(new ThawError('THAW_E_REQUEST_INVALID', 'the client went away'));
  signal.addEventListener('abort', onAbort, { once: true });
  worker.once('message', (r: Reply) => {
    if (r.ok) { const { ok: _, ...rest } = r; resolve(rest); }
    else reject(r.code in errorRegistry ? new ThawError(r.code as ErrorCode, r.message) : new ThawError('THAW_E_INTERNAL', r.message));
  });
  worker.once('error', (err) => reject(new ThawError('THAW_E_INTERNAL', `the simulation failed: ${err.message}`, { cause: err })));
  worker.once('exit', () => reject(new ThawError('THAW_E_INTERNAL', 'the simulation worker exited without an answer')));
  return promise.finally(() => {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
    void worker.terminate();
  });
}
