// Policies: pure decision code over an injected clock, shared by the live agent and the simulator.
// Public entry of src/policies; imports nothing with I/O.
export * from './keepalive.ts';
export * from './ladder.ts';
