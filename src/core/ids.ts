// Identifiers: invocation ids are UUIDs (Lambda's awsRequestId shape); instance ids are short and sortable.
// Imports only node:crypto.
import { randomUUID, randomBytes } from 'node:crypto';

export const newInvocationId = (): string => randomUUID();

let instanceSeq = 0;
export const newInstanceId = (): string => `i-${(++instanceSeq).toString(36).padStart(4, '0')}${randomBytes(3).toString('hex')}`;
