// The bytes of a package a deploy sends: Code.ZipFile (base64 in the request) or Code.S3Bucket/S3Key
// (S3ObjectVersion), read from S3 with the same endpoint and keys as the S3 origin (AWS_ENDPOINT_URL_S3,
// AWS_ACCESS_KEY_ID, …) whether or not the origin is S3. Shared by CreateFunction, UpdateFunctionCode and
// PublishLayerVersion. Imports src/core, src/codestore and the gateway's plumbing.
import { S3Client } from '@aws-sdk/client-s3';
import { ThawError } from '../core/errors.ts';
import { readS3Package, s3ClientConfig, shownEndpoint } from '../codestore/index.ts';
import { optString } from './http.ts';

/**
 * The package `container` (a Code or Content structure, or UpdateFunctionCode's body) names, or undefined
 * when it names none. `field` prefixes the member names in messages (`Code.`, `Content.`, '').
 */
export async function packageBytes(container: Record<string, unknown>, field: string, maxBytes: number, s3TimeoutMs?: number): Promise<Buffer | undefined> {
  const zip = optString(container, 'ZipFile');
  const bucket = optString(container, 'S3Bucket');
  const key = optString(container, 'S3Key');
  const version = optString(container, 'S3ObjectVersion');
  const fromS3 = bucket !== undefined || key !== undefined || version !== undefined;
  if (zip !== undefined && fromS3) throw new ThawError('THAW_E_REQUEST_INVALID', `give the package either as ${field}ZipFile or as ${field}S3Bucket and ${field}S3Key, not both`, { details: { field: `${field}ZipFile` } });
  if (fromS3) {
    if (!bucket || !key) throw new ThawError('THAW_E_REQUEST_INVALID', `${field}S3Bucket and ${field}S3Key go together: name the bucket and the key of the package object`, { details: { field: `${field}${bucket ? 'S3Key' : 'S3Bucket'}` } });
    const ref = { bucket, key, ...(version !== undefined ? { version } : {}) };
    const client = new S3Client(s3ClientConfig());
    try {
      return await readS3Package(client, ref, maxBytes, field, shownEndpoint(), s3TimeoutMs);
    } finally {
      client.destroy();
    }
  }
  if (zip === undefined) return undefined;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(zip)) throw new ThawError('THAW_E_PACKAGE_FORMAT', `${field}ZipFile must be base64-encoded`);
  return Buffer.from(zip, 'base64');
}
