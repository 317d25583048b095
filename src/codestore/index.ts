// The code store: packages (zip/tgz) validated, stored content-addressed, unpacked once per node, and the
// handler found and checked. Public entry of src/codestore; imports src/core.
export { defaultPackageLimits, safePath, type PackageEntry, type PackageLimits } from './entries.ts';
export { extractPackage, readPackage, sniffFormat, zipDirectory, zipEntries, type PackageFormat, type ReadPackage } from './package.ts';
export { checkHandlerExport, parseHandler, resolveHandlerFile, HANDLER_EXTENSIONS, type ModuleFormat } from './handler.ts';
export { checkNotCallbackHandler, exportedArity } from './callback.ts';
export { BlobStore, sha256, hashCheck } from './blobs.ts';
export type { Origin, PutResult } from './origin.ts';
export { S3Origin, checkS3Ref, originOwner, parseS3Url, readS3Package, s3ClientConfig, s3Endpoint, shownEndpoint, type S3Location, type S3ObjectRef } from './s3-origin.ts';
export { CodeCache, treeKey, type CodeDir, type FillState } from './cache.ts';
export { buildInitBundle, fillFrom, FILLING_MARKER, type InitBundle } from './ondemand.ts';
export { ingestPackage, type Ingested } from './ingest.ts';
export type { ZipInput } from './zip.ts';
export { ingestLayer, OptTrees } from './layers.ts';
export { buildImage, canBuildImages, fuseImageMounts, imageUsable, type ImageMounts } from './images.ts';
