// Calls another function through context.invoke; Thaw records the call chain (chain -> hello) so a
// predictor can warm hello as soon as chain starts.
export const handler = async (event, context) => {
  const greeting = await context.invoke(event.target ?? 'hello', { name: event.name ?? 'chain' });
  return { from: context.functionName, got: greeting.message };
};
