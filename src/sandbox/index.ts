// Sandbox drivers: create the isolation unit of one instance. Public entry of src/sandbox; imports core.
export type { Sandbox, SandboxChannel, SandboxDriver, SandboxExit, SandboxSpec } from './types.ts';
export { processDriver } from './process.ts';
