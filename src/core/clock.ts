// The clock adapter: the only place that reads wall or monotonic time. Everything else takes a Clock.
// Imports nothing.

export interface TimerHandle { cancel(): void }

export interface Clock {
  /** Wall-clock epoch milliseconds. */
  now(): number;
  /** Monotonic milliseconds with sub-millisecond precision, for durations. */
  monotonic(): number;
  /** Runs fn after ms; the handle cancels it. Timers never keep the process alive on their own. */
  setTimer(fn: () => void, ms: number): TimerHandle;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimer(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

/**
 * Time that runs `speed` times faster than its base clock: a time-compressed replay of a trace runs the
 * real platform on it, so keep-alive windows of minutes pass in seconds. Timers fire after ms / speed.
 */
export class ScaledClock implements Clock {
  readonly speed: number;
  readonly #base: Clock;
  readonly #mono0: number;
  readonly #now0: number;

  constructor(base: Clock, speed: number) {
    if (!(speed > 0)) throw new RangeError(`speed must be > 0, got ${speed}`);
    this.#base = base;
    this.speed = speed;
    this.#mono0 = base.monotonic();
    this.#now0 = base.now();
  }

  now() { return Math.round(this.#now0 + (this.#base.monotonic() - this.#mono0) * this.speed); }
  monotonic() { return (this.#base.monotonic() - this.#mono0) * this.speed; }
  setTimer(fn: () => void, ms: number): TimerHandle { return this.#base.setTimer(fn, Math.max(0, ms) / this.speed); }
}

/** A clock the caller advances by hand: used by tests and by the simulator's virtual time. */
export class ManualClock implements Clock {
  #now: number;
  #mono = 0;
  #timers: { at: number; fn: () => void; seq: number }[] = [];
  #seq = 0;

  constructor(startMs = 0) { this.#now = startMs; }

  now() { return this.#now; }
  monotonic() { return this.#mono; }

  setTimer(fn: () => void, ms: number): TimerHandle {
    const timer = { at: this.#mono + Math.max(0, ms), fn, seq: this.#seq++ };
    this.#timers.push(timer);
    return { cancel: () => { this.#timers = this.#timers.filter((t) => t !== timer); } };
  }

  /** Monotonic time of the earliest pending timer, or null: lets a test step from one timer to the next. */
  nextTimerAt(): number | null {
    return this.#timers.length ? Math.min(...this.#timers.map((t) => t.at)) : null;
  }

  /** Moves time forward, firing due timers in order. */
  advance(ms: number): void {
    const target = this.#mono + ms;
    for (;;) {
      const due = this.#timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.#now += due.at - this.#mono;
      this.#mono = due.at;
      due.fn();
    }
    this.#now += target - this.#mono;
    this.#mono = target;
  }
}
