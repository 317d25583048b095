// Policies: pure decision code over an injected clock, shared by the live agent and the simulator.
// Public entry of src/policies; imports nothing with I/O.
export * from './ladder.ts';
export * from './spec.ts';
export * from './histogram.ts';
export * from './gdsf.ts';
export * from './prewarm.ts';
export * from './autoscale.ts';
export * from './engine.ts';
export * from './tiers.ts';
