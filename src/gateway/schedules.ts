// Timer triggers: functions invoked on a schedule, `rate(5 minutes)` or a cron expression (5 fields, or
// AWS's 6 with `?` and a year), in UTC. An `invoke` schedule delivers EventBridge's scheduled event and
// counts as traffic; a `warmup` schedule delivers a warm-up event with context.warmup set, so the handler
// can return at once, and is recorded as a warm-up, never as a user invocation.
// The expression parser is pure; the Scheduler keeps the schedules in the store and one timer armed.
import { randomUUID } from 'node:crypto';
import type { Clock, TimerHandle } from '../core/clock.ts';
import { ThawError } from '../core/errors.ts';
import { ACCOUNT_ID } from '../core/arn.ts';
import type { InvocationTrigger, Schedule } from '../core/types.ts';
import type { Store } from '../store/index.ts';

export interface ScheduleExpression {
  /** The first firing strictly after epoch ms `after`. */
  next(after: number): number;
}

const MINUTE = 60_000;
const RATE_UNITS: Record<string, number> = { minute: MINUTE, minutes: MINUTE, hour: 60 * MINUTE, hours: 60 * MINUTE, day: 1440 * MINUTE, days: 1440 * MINUTE };
const FIELDS = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12 },
  { name: 'day-of-week', min: 0, max: 7 },
] as const;

function invalid(expression: string, why: string): never {
  throw new ThawError('THAW_E_SCHEDULE_INVALID', `schedule '${expression.slice(0, 80)}' ${why}`);
}

function parseField(text: string, f: (typeof FIELDS)[number], expression: string): Set<number> {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^(\*|\?|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
    if (!m) invalid(expression, `has '${part}' in the ${f.name} field; use *, N, N-M, */S or lists of them`);
    const step = m[4] ? Number(m[4]) : 1;
    const lo = m[1] === '*' || m[1] === '?' ? f.min : Number(m[2]);
    const hi = m[1] === '*' || m[1] === '?' ? f.max : m[3] !== undefined ? Number(m[3]) : m[4] ? f.max : lo;
    if (step < 1 || lo < f.min || hi > f.max || lo > hi) invalid(expression, `has '${part}' outside ${f.min}-${f.max} in the ${f.name} field`);
    for (let v = lo; v <= hi; v += step) out.add(f.name === 'day-of-week' && v === 7 ? 0 : v);
  }
  return out;
}

/** Parses rate(N unit) or cron(...) (the wrapper is optional for cron). Throws THAW_E_SCHEDULE_INVALID. */
export function parseSchedule(expression: string, anchor = 0): ScheduleExpression {
  if (typeof expression !== 'string' || !expression.trim() || expression.length > 256) invalid(String(expression), 'is empty or too long');
  const text = expression.trim();
  const rate = /^rate\(\s*(\d+)\s+([a-z]+)\s*\)$/.exec(text);
  if (rate) {
    const n = Number(rate[1]);
    const unit = RATE_UNITS[rate[2]];
    if (!unit || n < 1 || n > 100_000) invalid(text, 'needs a whole number of minutes, hours or days, e.g. rate(5 minutes)');
    const period = n * unit;
    // Firings fall on anchor + k·period.
    return { next: (after) => anchor + (Math.floor((after - anchor) / period) + 1) * period };
  }
  const body = /^cron\((.*)\)$/.exec(text)?.[1] ?? text;
  const parts = body.trim().split(/\s+/);
  if (parts.length === 6) {
    if (!/^(\*|\d{4}(-\d{4})?)$/.test(parts[5])) invalid(text, `has '${parts[5]}' as its year; use * or a year`);
    parts.pop();
  }
  if (parts.length !== 5) invalid(text, `has ${parts.length} fields; a cron expression has 5 (minute hour day-of-month month day-of-week)`);
  const [min, hour, dom, month, dow] = parts.map((p, i) => parseField(p, FIELDS[i], text));
  const domAny = parts[2] === '*' || parts[2] === '?';
  const dowAny = parts[4] === '*' || parts[4] === '?';
  return {
    next(after) {
      let t = Math.floor(after / MINUTE) * MINUTE + MINUTE;
      // At most five years of minutes; a valid expression always fires sooner (e.g. Feb 29 within four).
      for (let k = 0; k < 5 * 366 * 1440; k++, t += MINUTE) {
        const d = new Date(t);
        if (!min.has(d.getUTCMinutes()) || !hour.has(d.getUTCHours()) || !month.has(d.getUTCMonth() + 1)) continue;
        // As in cron: when both day fields are restricted, either may match.
        const domOk = dom.has(d.getUTCDate()), dowOk = dow.has(d.getUTCDay());
        if (domAny && dowAny ? true : domAny ? dowOk : dowAny ? domOk : domOk || dowOk) return t;
      }
      return invalid(text, 'never fires');
    },
  };
}

export interface SchedulerOptions {
  store: Store;
  clock: Clock;
  region: string;
  invoke(functionName: string, qualifier: string, payload: string, trigger: InvocationTrigger): Promise<unknown>;
  onError(message: string): void;
  /**
   * On a store other control planes share: re-read the schedules at least this often and before each firing,
   * so one added (or removed) through another is fired here too, even after that one is gone.
   */
  reloadMs?: number;
}

export interface ScheduleInput {
  expression: string;
  kind?: 'invoke' | 'warmup';
  qualifier?: string;
  payload?: string | null;
}

/** Longest single timer; longer waits are re-armed. */
const MAX_WAIT_MS = 3600_000;

export class Scheduler {
  #o: SchedulerOptions;
  #schedules = new Map<string, Schedule>();
  #timer: TimerHandle | null = null;
  #closed = false;
  #running = new Set<Promise<unknown>>();
  /** Firings in order, for tests and the API: schedule id, when, and what came of it. */
  readonly history: { id: string; at: number; outcome: 'ok' | 'error'; detail: string }[] = [];

  constructor(options: SchedulerOptions) { this.#o = options; }

  async start(): Promise<void> {
    for (const s of await this.#o.store.listSchedules()) this.#schedules.set(s.id, s);
    this.#arm();
  }

  async add(functionName: string, input: ScheduleInput): Promise<Schedule> {
    const now = this.#o.clock.now();
    const kind = input.kind ?? 'invoke';
    if (kind !== 'invoke' && kind !== 'warmup') throw new ThawError('THAW_E_REQUEST_INVALID', `kind must be invoke or warmup, got ${JSON.stringify(kind)}`);
    const expr = parseSchedule(input.expression, now);
    const s: Schedule = {
      id: `sch-${randomUUID().slice(0, 8)}`, functionName, qualifier: input.qualifier ?? '$LATEST', expression: input.expression.trim(), kind,
      payload: input.payload ?? null, enabled: true, nextAt: expr.next(now), lastAt: null, createdAt: now,
    };
    await this.#o.store.putSchedule(s);
    this.#schedules.set(s.id, s);
    this.#arm();
    return s;
  }

  list(functionName?: string): Schedule[] {
    return [...this.#schedules.values()].filter((s) => !functionName || s.functionName === functionName).sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  }

  async remove(functionName: string, id: string): Promise<void> {
    const s = this.#schedules.get(id);
    if (!s || s.functionName !== functionName) throw new ThawError('THAW_E_SCHEDULE_NOT_FOUND', `function ${functionName} has no schedule ${id}`);
    await this.#o.store.deleteSchedule(id);
    this.#schedules.delete(id);
    this.#arm();
  }

  /** Forgets a deleted function's schedules (the store has dropped them). */
  forget(functionName: string): void {
    for (const [id, s] of this.#schedules) if (s.functionName === functionName) this.#schedules.delete(id);
    this.#arm();
  }

  #arm(): void {
    this.#timer?.cancel();
    this.#timer = null;
    if (this.#closed) return;
    let next = Infinity;
    for (const s of this.#schedules.values()) if (s.enabled) next = Math.min(next, s.nextAt);
    const wait = Math.min(MAX_WAIT_MS, this.#o.reloadMs ?? Infinity, Math.max(0, next - this.#o.clock.now()));
    if (!Number.isFinite(wait)) return;
    this.#timer = this.#o.clock.setTimer(() => { void this.fire(); }, wait);
  }

  /** Fires every due schedule once (a firing missed while Thaw was down is taken once, not replayed). */
  async fire(): Promise<void> {
    if (this.#o.reloadMs !== undefined) await this.#reloadAll();
    const now = this.#o.clock.now();
    for (const s of [...this.#schedules.values()]) {
      if (!s.enabled || s.nextAt > now) continue;
      const updated: Schedule = { ...s, lastAt: now, nextAt: parseSchedule(s.expression, s.createdAt).next(now) };
      this.#schedules.set(s.id, updated);
      // The claim: on a store other control planes share, whoever moves nextAt on first fires; the others don't.
      try {
        if (!(await this.#o.store.claimSchedule(updated, s.nextAt))) { await this.#reload(s.id); continue; }
      } catch (err) { this.#o.onError(`schedule ${s.id}: ${(err as Error).message}`); }
      const p = this.#o.invoke(s.functionName, s.qualifier, this.#event(s, now), s.kind === 'warmup' ? 'warmup' : 'timer').then(
        () => { this.#note(s.id, now, 'ok', ''); },
        (err) => { this.#note(s.id, now, 'error', (err as Error).message); this.#o.onError(`schedule ${s.id} of ${s.functionName}: ${(err as Error).message}`); },
      );
      this.#running.add(p);
      void p.finally(() => this.#running.delete(p));
    }
    this.#arm();
  }

  /** The store's schedules replace those held (kept as they are while the store cannot be read). */
  async #reloadAll(): Promise<void> {
    try {
      this.#schedules = new Map((await this.#o.store.listSchedules()).map((s) => [s.id, s]));
    } catch (err) {
      this.#o.onError(`could not re-read the schedules: ${(err as Error).message}`);
    }
  }

  /** Another control plane fired (or removed) the schedule: take the store's copy of it. */
  async #reload(id: string): Promise<void> {
    const fn = this.#schedules.get(id)?.functionName;
    const current = fn === undefined ? undefined : (await this.#o.store.listSchedules(fn)).find((x) => x.id === id);
    if (current) this.#schedules.set(id, current);
    else this.#schedules.delete(id);
  }

  #note(id: string, at: number, outcome: 'ok' | 'error', detail: string) {
    this.history.push({ id, at, outcome, detail });
    if (this.history.length > 1000) this.history.shift();
  }

  /** The event a firing delivers: the schedule's own payload, else EventBridge's (or Thaw's warm-up) shape. */
  #event(s: Schedule, at: number): string {
    if (s.payload !== null) return s.payload;
    const base = {
      version: '0', id: randomUUID(), account: ACCOUNT_ID, time: new Date(at).toISOString().replace(/\.\d{3}Z$/, 'Z'), region: this.#o.region,
      resources: [`arn:aws:events:${this.#o.region}:${ACCOUNT_ID}:rule/thaw-${s.id}`], detail: {},
    };
    return JSON.stringify(s.kind === 'warmup'
      ? { ...base, 'detail-type': 'Thaw Warm-up', source: 'thaw.warmup', warmup: true }
      : { ...base, 'detail-type': 'Scheduled Event', source: 'aws.events' });
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#timer?.cancel();
    await Promise.allSettled([...this.#running]);
  }
}
