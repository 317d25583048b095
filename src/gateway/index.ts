// Gateway: the HTTP front door (Lambda Invoke and management API, HTTP triggers, Thaw's API) and the
// composition root. Public entry of src/gateway; may import every component.
export { startThaw, type RunningThaw } from './server.ts';
export { resolveOptions, type UserOptions, type ResolvedOptions } from './options.ts';
export { Platform } from './platform.ts';
export { httpEventV2, httpResponseV2 } from './triggers.ts';
export { parseSchedule } from './schedules.ts';
export { KeyRing, keyView } from './keys.ts';
export { signRequest, parseSignature, verifySignature } from './sigv4.ts';
export { openStore, redactUrl } from '../store/index.ts';
export { startAgentNode, type AgentNodeOptions, type RunningAgent } from './agent-node.ts';
