// The smallest function: returns a greeting and says which instance answered.
const startedAt = new Date().toISOString();

export const handler = async (event, context) => {
  console.log('hello invoked', JSON.stringify(event));
  return {
    message: `Hello, ${event?.name ?? 'world'}!`,
    requestId: context.awsRequestId,
    version: context.functionVersion,
    instanceStartedAt: startedAt,
  };
};
