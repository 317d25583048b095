// Sandbox drivers: create the isolation unit of one instance. Public entry of src/sandbox; imports core.
export type { CodeView, PageOut, Sandbox, SandboxChannel, SandboxDriver, SandboxExit, SandboxReport, SandboxSpec } from './types.ts';
export { processDriver } from './process.ts';
export { NamespacesDriver, namespacesDriver, probeNamespaces, scopeTagFor, type NamespacesOptions } from './namespaces.ts';
export { Mounter } from './mounter.ts';
export { enableZramSwap, releaseLeftoverZram, swapDevices, zramStats, type SwapInfo } from './swap.ts';
export { memoryDriver, type MemoryProgram, type MemoryUnit } from './memory.ts';
export { detectCgroups, enforcement, PIDS_MAX, type CgroupLayout } from './cgroups.ts';
