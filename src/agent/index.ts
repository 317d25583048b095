// The agent: one per machine; instance pools, the ladder, timeouts, keep-alive.
// Public entry of src/agent; may import sandbox, runtimes, codestore, policies, core.
export { Agent, type AgentOptions, type InvokeRequest, type InvokeResult, type CallRequest, type CallResult } from './agent.ts';
export { instanceTransitions, canTransition, functionKey, type InstanceView } from './instance.ts';
export { MAX_STREAMED_RESPONSE_BYTES, type ResponseStream } from './streaming.ts';
export type { Executor, ReservedStatus } from './executor.ts';
export type { SnapshotBook } from './snapshots.ts';
export { DecisionLog, type TakenDecision } from './decisions.ts';
