import { test } from 'node:test';
import assert from 'node:assert/strict';
import { httpEventV2, httpResponseV2 } from './triggers.ts';

const base = {
  method: 'POST', path: '/items/42', rawQueryString: 'a=1&b=2&a=3', sourceIp: '127.0.0.1', requestId: 'r1',
  timeEpoch: Date.UTC(2020, 2, 12, 19, 3, 58), functionName: 'api', host: 'localhost:8080',
};

test('httpEventV2() builds the API Gateway v2.0 shape', () => {
  const e = httpEventV2({ ...base, headers: { 'content-type': 'application/json', cookie: 'a=1; b=2', 'user-agent': 'ua' }, body: Buffer.from('{"x":1}') });
  assert.equal(e.version, '2.0');
  assert.equal(e.routeKey, '$default');
  assert.equal(e.rawPath, '/items/42');
  assert.deepEqual(e.cookies, ['a=1', 'b=2']);
  assert.equal(e.headers.cookie, undefined);
  assert.deepEqual(e.queryStringParameters, { a: '1,3', b: '2' });
  assert.equal(e.requestContext.http.method, 'POST');
  assert.equal(e.requestContext.time, '12/Mar/2020:19:03:58 +0000');
  assert.equal(e.body, '{"x":1}');
  assert.equal(e.isBase64Encoded, false);
});

test('httpEventV2() base64-encodes binary bodies', () => {
  const e = httpEventV2({ ...base, headers: { 'content-type': 'image/png' }, body: Buffer.from([0, 1, 2, 255]) });
  assert.equal(e.isBase64Encoded, true);
  assert.equal(e.body, Buffer.from([0, 1, 2, 255]).toString('base64'));
});

test('httpResponseV2() maps statusCode, headers, cookies and base64 bodies', () => {
  const r = httpResponseV2(JSON.stringify({ statusCode: 201, headers: { 'X-A': 'b' }, cookies: ['c=1', 'd=2'], body: Buffer.from('hi').toString('base64'), isBase64Encoded: true }));
  assert.equal(r.status, 201);
  assert.equal(r.headers['x-a'], 'b');
  assert.deepEqual(r.headers['set-cookie'], ['c=1', 'd=2']);
  assert.equal(r.body.toString(), 'hi');
});

test('httpResponseV2() treats a result without statusCode as a 200 JSON body', () => {
  const r = httpResponseV2(JSON.stringify({ ok: true }));
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'application/json');
  assert.equal(r.body.toString(), '{"ok":true}');
  assert.equal(httpResponseV2('"plain"').body.toString(), 'plain');
});

test('httpResponseV2() answers 502 for an impossible status code', () => {
  assert.equal(httpResponseV2(JSON.stringify({ statusCode: 42 })).status, 502);
});
