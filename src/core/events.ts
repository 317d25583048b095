// Named diagnostics_channel events: telemetry, metrics, the dashboard and the simulator subscribe to these
// instead of being called. Imports only node:diagnostics_channel and types.
import diagnostics_channel from 'node:diagnostics_channel';
import type { InstanceState } from './types.ts';
import type { InvocationRecord } from './types.ts';

export interface InvocationStartEvent {
  invocationId: string;
  functionName: string;
  qualifier: string;
  trigger: InvocationRecord['trigger'];
  at: number;
}

export interface InstanceStateEvent {
  instanceId: string;
  functionName: string | null;
  version: string | null;
  from: InstanceState | null;
  to: InstanceState;
  reason: string;
  at: number;
}

export interface LogEvent {
  functionName: string;
  version: string;
  instanceId: string;
  invocationId: string | null;
  stream: 'stdout' | 'stderr' | 'platform';
  at: number;
  line: string;
}

export const channels = {
  invocationStart: diagnostics_channel.channel('thaw:invocation:start'),
  invocationEnd: diagnostics_channel.channel('thaw:invocation:end'),
  instanceState: diagnostics_channel.channel('thaw:instance:state'),
  log: diagnostics_channel.channel('thaw:function:log'),
  policyDecision: diagnostics_channel.channel('thaw:policy:decision'),
} as const;

/** A keep-alive, freeze, prewarm, scale or eviction decision the agent took, with its reason. */
export interface PolicyDecisionEvent {
  readonly at: number;
  readonly wallAt: number;
  readonly fn: string;
  readonly action: 'freeze' | 'page' | 'stop' | 'evict' | 'prewarm';
  readonly reason: string;
  readonly outcome: 'done' | 'skipped';
}

export const publishInvocationStart = (e: InvocationStartEvent) => { if (channels.invocationStart.hasSubscribers) channels.invocationStart.publish(e); };
export const publishInvocationEnd = (e: InvocationRecord) => { if (channels.invocationEnd.hasSubscribers) channels.invocationEnd.publish(e); };
export const publishInstanceState = (e: InstanceStateEvent) => { if (channels.instanceState.hasSubscribers) channels.instanceState.publish(e); };
export const publishLog = (e: LogEvent) => { if (channels.log.hasSubscribers) channels.log.publish(e); };
export const publishPolicyDecision = (e: PolicyDecisionEvent) => { if (channels.policyDecision.hasSubscribers) channels.policyDecision.publish(e); };
