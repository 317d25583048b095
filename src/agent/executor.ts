// What the composition root asks of whatever runs invocations: this machine's Agent, or a cluster's Fleet
// of remote agents (src/cluster). Every config change the platform makes goes through it, so one process
// and a control plane differ in one object, not at each call site. Imports nothing at run time.
import type { FunctionVersion } from '../core/types.ts';
import type { PolicySpec } from '../policies/index.ts';
import type { InvokeRequest, InvokeResult } from './agent.ts';
import type { TakenDecision } from './decisions.ts';
import type { InstanceView } from './instance.ts';

export interface ReservedStatus {
  version: string;
  requested: number;
  available: number;
  allocated: number;
  failure: string | null;
}

export interface Executor {
  invoke(req: InvokeRequest): Promise<InvokeResult>;
  /** Every instance (a fleet's carry the agent they run on). */
  instances(): InstanceView[];
  setReserved(functionName: string, qualifier: string, version: FunctionVersion | null, count: number): void;
  reservedStatus(functionName: string, qualifier: string): ReservedStatus | null;
  /** Stops the instances of a function whose version `keep` refuses (all, without it). */
  retire(functionName: string, keep: ((v: FunctionVersion) => boolean) | undefined, mode?: 'delete' | 'update'): Promise<void>;
  /** Warms versions of a function to these counts ahead of traffic (an alias moved, a version was published). */
  rollout(functionName: string, qualifier: string, targets: readonly { version: FunctionVersion; count: number }[], reason: string): void;
  /** A deleted function: nothing more is pre-warmed for it. */
  forget(functionName: string): void;
  /** A function's own policy (null: the default), applied to its instances now. */
  setPolicy(functionName: string, spec: PolicySpec | null): void;
  /** The newest policy decisions taken, oldest first; of one function when named (a fleet's carry their agent). */
  decisions(fn?: string, limit?: number): TakenDecision[];
}
