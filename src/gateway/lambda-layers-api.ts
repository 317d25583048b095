// Lambda's layer API (2018-10-31) as the AWS SDK v3 calls it: PublishLayerVersion (Content.ZipFile),
// GetLayerVersion, GetLayerVersionByArn, ListLayers, ListLayerVersions, DeleteLayerVersion, and the layer
// version policy (Add/RemoveLayerVersionPermission, GetLayerVersionPolicy), stored and returned as Lambda
// does. Imports src/core, control (through the platform) and the gateway's plumbing.
import { ThawError } from '../core/errors.ts';
import type { LayerVersion } from '../core/types.ts';
import type { LayerFilter } from '../control/index.ts';
import { checkFields, listPage, optObject, optString, readJson, sendJson, type RequestContext, type Router } from './http.ts';
import type { Platform } from './platform.ts';
import { packageBytes } from './code-source.ts';

const BODY_BYTES = 64 * 1024;
// Request fields of each operation (the AWS SDK's shapes, path and query parameters left out): any other is
// refused, never dropped silently.
const PUBLISH_FIELDS = ['Content', 'Description', 'CompatibleRuntimes', 'CompatibleArchitectures', 'LicenseInfo'];
const CONTENT_FIELDS = ['ZipFile', 'S3Bucket', 'S3Key', 'S3ObjectVersion'];
const PERMISSION_FIELDS = ['StatementId', 'Action', 'Principal', 'OrganizationId'];

export function layerRoutes(router: Router, platform: Platform, baseUrl: () => string): void {
  const { layers } = platform.control;
  const base = '/2018-10-31/layers';
  // A layer zip is a package: the same limit, base64 in JSON.
  const publishBodyBytes = Math.ceil(platform.options.maxPackageBytes * 4 / 3) + BODY_BYTES;

  const date = (ms: number) => new Date(ms).toISOString().replace('Z', '+0000');

  /** The fields every answer about a layer version carries (ListLayerVersions' items, LatestMatchingVersion). */
  const item = (v: LayerVersion) => ({
    LayerVersionArn: layers.arnOf(v),
    Version: v.version,
    Description: v.description,
    CreatedDate: date(v.createdAt),
    CompatibleRuntimes: [...v.compatibleRuntimes],
    CompatibleArchitectures: [...v.compatibleArchitectures],
    ...(v.licenseInfo !== null ? { LicenseInfo: v.licenseInfo } : {}),
  });

  /** PublishLayerVersion's and GetLayerVersion's answer. */
  const full = (v: LayerVersion) => ({
    Content: { Location: `${baseUrl()}/thaw/v1/code/${v.codeSha256}`, CodeSha256: Buffer.from(v.codeSha256, 'hex').toString('base64'), CodeSize: v.codeSize },
    LayerArn: layers.arnOf({ name: v.name }),
    ...item(v),
  });

  const versionOf = (ctx: RequestContext) => {
    const n = ctx.params.version;
    if (!/^[1-9]\d{0,9}$/.test(n)) throw new ThawError('THAW_E_REQUEST_INVALID', `VersionNumber must be a positive whole number, got ${JSON.stringify(n)}`);
    return Number(n);
  };

  const filter = (ctx: RequestContext): LayerFilter => ({
    runtime: ctx.url.searchParams.get('CompatibleRuntime'),
    architecture: ctx.url.searchParams.get('CompatibleArchitecture'),
  });

  router.on('POST', `${base}/{layer}/versions`, async (ctx) => {
    const body = await readJson(ctx.req, publishBodyBytes);
    checkFields('PublishLayerVersion', body, PUBLISH_FIELDS);
    const content = optObject(body, 'Content');
    if (content) checkFields('PublishLayerVersion\'s Content', content, CONTENT_FIELDS);
    if (!content) throw new ThawError('THAW_E_PACKAGE_MISSING', 'Content is required: give Content.ZipFile with the base64 of a .zip, or Content.S3Bucket and Content.S3Key');
    const v = await layers.publish({
      name: ctx.params.layer,
      zip: await packageBytes(content, 'Content.', platform.options.maxPackageBytes, platform.options.codeS3TimeoutMs),
      description: optString(body, 'Description'),
      compatibleRuntimes: body.CompatibleRuntimes ?? undefined,
      compatibleArchitectures: body.CompatibleArchitectures ?? undefined,
      licenseInfo: optString(body, 'LicenseInfo'),
    });
    sendJson(ctx, 201, full(v));
  });

  // ListLayers, and GetLayerVersionByArn (the same path with ?find=LayerVersion&Arn=…).
  router.on('GET', base, async (ctx) => {
    if (ctx.url.searchParams.get('find') === 'LayerVersion') {
      const arn = ctx.url.searchParams.get('Arn');
      if (!arn) throw new ThawError('THAW_E_REQUEST_INVALID', 'Arn is required: the layer version ARN to find');
      sendJson(ctx, 200, full(await layers.getByArn(arn)));
      return;
    }
    const { items, next } = listPage(ctx, await layers.list(filter(ctx)));
    sendJson(ctx, 200, {
      Layers: items.map((v) => ({ LayerName: v.name, LayerArn: layers.arnOf({ name: v.name }), LatestMatchingVersion: item(v) })),
      ...next,
    });
  });

  router.on('GET', `${base}/{layer}/versions`, async (ctx) => {
    const { items, next } = listPage(ctx, await layers.listVersions(ctx.params.layer, filter(ctx)));
    sendJson(ctx, 200, { LayerVersions: items.map(item), ...next });
  });

  router.on('GET', `${base}/{layer}/versions/{version}`, async (ctx) => {
    sendJson(ctx, 200, full(await layers.get(ctx.params.layer, versionOf(ctx))));
  });

  router.on('DELETE', `${base}/{layer}/versions/{version}`, async (ctx) => {
    await layers.delete(ctx.params.layer, versionOf(ctx));
    sendJson(ctx, 204, undefined);
  });

  router.on('POST', `${base}/{layer}/versions/{version}/policy`, async (ctx) => {
    const body = await readJson(ctx.req, BODY_BYTES);
    checkFields('AddLayerVersionPermission', body, PERMISSION_FIELDS);
    const r = await layers.addPermission(ctx.params.layer, versionOf(ctx), {
      statementId: optString(body, 'StatementId'), action: optString(body, 'Action'), principal: optString(body, 'Principal'),
      organizationId: optString(body, 'OrganizationId'), revisionId: ctx.url.searchParams.get('RevisionId') ?? undefined,
    });
    sendJson(ctx, 201, { Statement: r.statement, RevisionId: r.revisionId });
  });

  router.on('GET', `${base}/{layer}/versions/{version}/policy`, async (ctx) => {
    const r = await layers.getPolicy(ctx.params.layer, versionOf(ctx));
    sendJson(ctx, 200, { Policy: r.policy, RevisionId: r.revisionId });
  });

  router.on('DELETE', `${base}/{layer}/versions/{version}/policy/{sid}`, async (ctx) => {
    await layers.removePermission(ctx.params.layer, versionOf(ctx), ctx.params.sid, ctx.url.searchParams.get('RevisionId') ?? undefined);
    sendJson(ctx, 204, undefined);
  });
}
