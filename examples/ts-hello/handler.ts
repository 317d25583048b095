// A TypeScript function: Thaw runs .ts handlers directly (types are stripped, not checked).
interface Event { name?: string }
interface Context { awsRequestId: string; getRemainingTimeInMillis(): number }

export const handler = async (event: Event, context: Context): Promise<{ message: string; remainingMs: number }> => {
  return { message: `Hello from TypeScript, ${event.name ?? 'world'}`, remainingMs: context.getRemainingTimeInMillis() };
};
