// Control: functions, versions, aliases, triggers, configuration; validation of every input.
// Public entry of src/control; may import store, codestore, core.
export { Control, pickRoutedVersion, type ControlOptions, type CreateFunctionInput, type Resolved, type AliasInput } from './control.ts';
export { parseOr, parseQualifier, validateFunctionName, validateAliasName, normalizeRuntime, RESERVED_NAMES, NETWORK_NAME, type ConfigInput } from './validate.ts';
export { Layers, type LayerFilter, type PublishLayerInput } from './layers.ts';
