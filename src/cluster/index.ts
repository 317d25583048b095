// A cluster: a control plane (`thaw up --no-agent`) placing invocations on remote agents (`thaw agent`).
// Public entry of src/cluster; may import core, codestore, agent, policies.
export { Fleet, type FleetOptions } from './fleet.ts';
export { PeerOrigin, type PeerSource } from './peer-origin.ts';
export { AgentSnapshotBook, SharedSnapshotOrigin, type SnapshotTransport } from './shared-snapshots.ts';
export { place, placeRandomly, PLACEMENT_REASONS, type Candidate, type Placement, type PlacementReason, type Wanted } from './placement.ts';
export {
  callSchema, commandSchema, heartbeatAnswerSchema, heartbeatSchema, invokeMessageSchema, parseMessage, snapshotKeyFingerprint, snapshotReportSchema, telemetrySchema,
  type Command, type Heartbeat, type HeartbeatAnswer, type InvokeLine, type InvokeMessage, type SnapshotReport, type TelemetryBatch,
} from './protocol.ts';
