// The simulator: traces (Azure Functions 2019 format, synthetic) replayed through the real policy engine
// on virtual time. Public entry of src/sim; imports src/core and src/policies.
export * from './trace.ts';
export * from './simulate.ts';
export * from './sweep.ts';
export * from './bench.ts';
export * from './whatif.ts';
