// Why a cold start happened (`thaw why`): the evidence the agent keeps of how each version's instances
// ended (a policy's stop or scale-in, an eviction and who needed the memory, a crash, a kill), the facts
// taken from it at the moment a start begins, and the pure rule that names the cause from those facts. The
// facts go on the invocation record, so the answer does not depend on what is still in memory later.
// Imports src/core.
import type { Clock } from '../core/clock.ts';
import type { ColdStartCause, ColdStartCauseKind, ColdStartFacts, FunctionVersion, InstanceEnd } from '../core/types.ts';
import type { Instance } from './instance.ts';

/** The instance's end as it will be recorded, and when it had gone idle (monotonic; null: not resting). */
interface Ended { readonly end: InstanceEnd; readonly idleSince: number | null }

export interface LedgerOptions {
  clock: Clock;
  /** The function's policy now, as a spec string. */
  policyOf(fn: string): string;
}

/** What a start finds of its version's other instances, given by the agent. */
export interface StartContext {
  /** Live instances of this version (any state but stopping and gone). */
  readonly instances: readonly Instance[];
  /** Which of them are starting for an invocation (so they count as busy). */
  claimed(i: Instance): boolean;
  /** Live instances of the function's other versions. */
  readonly otherVersionInstances: number;
  /** Reserved instances configured for this version. */
  readonly reservedConfigured: number;
  readonly waitedForVersionPrewarm: boolean;
}

const resting = (i: Instance) => i.state === 'idle' || i.state === 'frozen' || i.state === 'paged';

export class ColdStartLedger {
  readonly #o: LedgerOptions;
  /** Function keys (version and revision) this node ever started an instance of. */
  readonly #versions = new Set<string>();
  /** Per function, the version its newest instance runs. */
  readonly #lastVersion = new Map<string, string>();
  /** Per function key, how its newest ended instance went. */
  readonly #ends = new Map<string, Ended>();
  /** Per function, the key and end of its newest ended instance of any version. */
  readonly #functionEnds = new Map<string, { key: string; end: InstanceEnd }>();
  /** Instances whose end was decided (stop, evict, retire) before their process exited. */
  readonly #decided = new WeakSet<Instance>();

  constructor(options: LedgerOptions) { this.#o = options; }

  /** An instance was adopted: its version and function have now been seen. */
  started(i: Instance): void {
    this.#versions.add(i.key);
    this.#lastVersion.set(i.version.functionName, i.version.version);
  }

  /** A decided end (a policy's stop or scale-in, an eviction, a retire), noted before the process is killed. */
  ending(i: Instance, how: InstanceEnd['how'], reason: string, extra: Partial<InstanceEnd> = {}): void {
    if (this.#decided.has(i) || i.state === 'stopping' || i.state === 'gone') return;
    this.#decided.add(i);
    this.#note(i, { how, reason, ...extra });
  }

  /** Its process exited: a death or a kill nobody decided as a policy (timeout, failed init) is noted now. */
  exited(i: Instance, exit: { killReason: string | null; signal: string | null; code: number | null; oomKilled: boolean }, stateBefore: Instance['state']): void {
    if (this.#decided.has(i)) return;
    this.#decided.add(i);
    const how = exit.killReason ? 'killed' : 'crashed';
    const reason = exit.killReason ?? `${exit.signal ? `died by ${exit.signal}` : `exited with status ${exit.code}`}${exit.oomKilled ? ' (out of memory)' : ''}`;
    this.#note(i, { how, reason: stateBefore === 'busy' ? `${reason} while running an invocation` : reason });
  }

  #note(i: Instance, e: Pick<InstanceEnd, 'how' | 'reason'> & Partial<InstanceEnd>): void {
    const now = this.#o.clock.monotonic();
    const idleSince = resting(i) ? i.idleSince : null;
    const end: InstanceEnd = { instanceId: i.id, endedAt: this.#o.clock.now(), idleMs: idleSince === null ? null : Math.round(now - idleSince), policy: this.#o.policyOf(i.version.functionName), ...e };
    this.#ends.set(i.key, { idleSince, end });
    this.#functionEnds.set(i.version.functionName, { key: i.key, end });
  }

  /** The facts a start of v begins with, taken now. */
  facts(v: FunctionVersion, key: string, ctx: StartContext): ColdStartFacts {
    const fn = v.functionName;
    const ended = this.#ends.get(key) ?? null;
    const previous = this.#lastVersion.get(fn);
    const newest = this.#functionEnds.get(fn);
    const busy = ctx.instances.filter((i) => i.state === 'busy' || ((i.state === 'starting' || i.state === 'initializing') && ctx.claimed(i)));
    return {
      functionSeen: previous !== undefined,
      versionSeen: this.#versions.has(key),
      previousVersion: previous !== undefined && !this.#versions.has(key) ? previous : null,
      lastEnd: ended?.end ?? null,
      idleGapMs: ended?.idleSince != null ? Math.round(this.#o.clock.monotonic() - ended.idleSince) : null,
      busy: busy.length,
      instanceConcurrency: v.config.instanceConcurrency,
      reserved: ctx.reservedConfigured > 0 ? { configured: ctx.reservedConfigured, busy: busy.filter((i) => i.reserved).length } : null,
      versionPrewarm: ctx.waitedForVersionPrewarm ? 'waited' : 'none',
      otherVersionInstances: ctx.otherVersionInstances,
      otherVersionEnd: newest && newest.key !== key ? newest.end : null,
      policy: this.#o.policyOf(fn),
    };
  }

  /** A deleted function is forgotten: a new one of the same name starts from nothing. */
  forget(fn: string): void {
    this.#lastVersion.delete(fn);
    this.#functionEnds.delete(fn);
    const prefix = `${fn}@`;
    for (const k of this.#versions) if (k.startsWith(prefix)) this.#versions.delete(k);
    for (const k of this.#ends.keys()) if (k.startsWith(prefix)) this.#ends.delete(k);
  }
}

const ms = (x: number) => (x >= 3600_000 ? `${(x / 3600_000).toFixed(1)} h` : x >= 60_000 ? `${(x / 60_000).toFixed(1)} min` : x >= 1000 ? `${(x / 1000).toFixed(1)} s` : `${Math.round(x)} ms`);

/** Names a cold start's cause from its facts: the first rule that holds, most specific first. */
export function classifyColdStart(f: ColdStartFacts, version: string): ColdStartCause {
  const named = (cause: ColdStartCauseKind, detail: string): ColdStartCause => ({ cause, detail, facts: f });
  if (f.reserved && f.reserved.busy >= f.reserved.configured) {
    return named('reserved-exhausted', `all ${f.reserved.configured} reserved instance(s) of version ${version} were busy`);
  }
  const e = f.lastEnd;
  if (f.busy > 0 && e?.how === 'scaled-in') {
    return named('scaled-in', `${f.busy} instance(s) of version ${version} were busy, and the one that would have taken it had been scaled in by policy ${e.policy} (${e.reason})`);
  }
  if (f.busy > 0) {
    return named('burst', `${f.busy} instance(s) of version ${version} were busy or starting for other invocations (${f.instanceConcurrency} invocation(s) each at a time)`);
  }
  if (f.versionPrewarm === 'waited') return named('new-version', `version ${version} was new here: it waited for the version prewarm under way`);
  if (!f.functionSeen) return named('first-invocation', 'the function had never run on this node');
  if (!f.versionSeen) {
    const retired = f.otherVersionEnd?.how === 'retired' ? f.otherVersionEnd : null;
    const why = f.otherVersionInstances === 0 && retired
      ? `the change stopped the function's last instance (${retired.instanceId}, of the earlier code${retired.idleMs === null ? '' : `, ${ms(retired.idleMs)} idle`}) and no version prewarm started one of the new code`
      : f.otherVersionInstances === 0
      ? 'version prewarm did not apply: the function had no live instances (a new version is warmed only for a function with traffic)'
      : `no version prewarm had started it (the function had ${f.otherVersionInstances} instance(s) of other versions)`;
    return named('new-version', `version ${version} had never run here (before it: ${f.previousVersion === version || f.previousVersion === null ? `an earlier revision of ${version}` : f.previousVersion}); ${why}`);
  }
  if (!e) return named('first-invocation', `no instance of version ${version} is known to have ended here`);
  const idle = e.idleMs === null ? '' : ` after ${ms(e.idleMs)} idle`;
  switch (e.how) {
    case 'stopped': return named('expired-keep-alive', `its last instance was stopped by policy ${e.policy}${idle}; the next call came ${ms(f.idleGapMs ?? 0)} after it went idle`);
    case 'scaled-in': return named('scaled-in', `its last instance was scaled in by policy ${e.policy}${idle} (${e.reason})`);
    case 'evicted': return named('evicted-memory', `its last instance was evicted${idle} under the ${e.budgetMb} MB memory budget (${e.loadedMb} MB loaded) for a start of ${e.evictedFor}; kept: ${e.kept?.length ? e.kept.join(', ') : 'none'}`);
    case 'retired': return named('retired', `its last instance was stopped because the function changed (${e.reason})`);
    case 'crashed': case 'killed': return named('crashed', `the previous instance died: ${e.reason}`);
  }
}
