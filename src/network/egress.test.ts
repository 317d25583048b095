import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockList } from 'node:net';
import { ThawError } from '../core/errors.ts';
import { EgressRules, parseEgressSpec, validateEgress } from './egress.ts';

const own = new BlockList();
own.addAddress('203.0.113.7');

test('egress specs: none, public, and allow-lists of hosts, wildcards, CIDRs and ports', () => {
  assert.deepEqual(parseEgressSpec('none'), { mode: 'none' });
  assert.deepEqual(parseEgressSpec('public'), { mode: 'public' });
  assert.deepEqual(parseEgressSpec('api.example.com:443, 10.0.0.0/24:5432|6432,*.s3.example.com,[fd00::/8]:80-90'),
    { mode: 'allow', allow: ['api.example.com:443', '10.0.0.0/24:5432|6432', '*.s3.example.com', '[fd00::/8]:80-90'] });
  for (const bad of ['', 'exa mple.com', 'a.com:0', 'a.com:70000', 'a.com:9-8', '10.0.0.0/33', 'http://a.com', '*.', 'a..b']) {
    assert.throws(() => parseEgressSpec(bad), (e: unknown) => e instanceof ThawError && e.code === 'THAW_E_EGRESS_INVALID', bad);
  }
  assert.throws(() => validateEgress({ mode: 'public', allow: ['a.com'] }), /only given with mode allow/);
  assert.throws(() => validateEgress({ mode: 'allow' }), /needs a list of rules/);
  assert.throws(() => validateEgress({ mode: 'maybe' }), /none, public or allow/);
});

test('public: public addresses only; never loopback, link-local, private or the host itself', () => {
  const r = new EgressRules({ mode: 'public' });
  assert.equal(r.checkName('example.com', 443), null);
  assert.equal(r.checkAddress('example.com', '93.184.216.34', 443, own), null);
  for (const a of ['127.0.0.1', '127.9.9.9', '169.254.169.254', '0.0.0.0', '::1', 'fe80::1', '::ffff:127.0.0.1', '10.1.2.3', '172.20.0.1', '192.168.1.1', '100.64.0.1', 'fd00::1', '203.0.113.7']) {
    assert.ok(r.checkAddress('x.example', a, 80, own), `${a} must be refused`);
  }
});

test('allow-list: names match exactly or by wildcard, addresses by CIDR, each with its ports', () => {
  const r = new EgressRules(parseEgressSpec('api.example.com:443,*.svc.example:8000-8100,10.0.0.0/24:5432,127.0.0.1/32:9000'));
  assert.equal(r.checkName('api.example.com', 443), null);
  assert.ok(r.checkName('api.example.com', 80), 'other port');
  assert.ok(r.checkName('evil.com', 443));
  assert.equal(r.checkName('a.svc.example', 8050), null);
  assert.equal(r.checkAddress('api.example.com', '93.184.216.34', 443, own), null);
  assert.equal(r.checkAddress('10.0.0.9', '10.0.0.9', 5432, own), null);
  assert.ok(r.checkAddress('10.0.0.9', '10.0.0.9', 22, own), 'port not listed');
  assert.ok(r.checkAddress('10.0.1.9', '10.0.1.9', 5432, own), 'outside the CIDR');
  // A name on the list that resolves to loopback is still refused; only a CIDR naming it opens it.
  assert.ok(r.checkAddress('api.example.com', '127.0.0.1', 443, own));
  assert.equal(r.checkAddress('127.0.0.1', '127.0.0.1', 9000, own), null);
  assert.ok(new EgressRules({ mode: 'none' }).checkName('api.example.com', 443));
});

test('local and own addresses need a rule that names them, not one that happens to cover them; CIDR rules admit no names', () => {
  const wide = new EgressRules(parseEgressSpec('0.0.0.0/0,10.0.0.0/8'));
  assert.ok(wide.checkAddress('127.0.0.1', '127.0.0.1', 80, own), '0.0.0.0/0 does not name loopback');
  assert.ok(wide.checkAddress('169.254.169.254', '169.254.169.254', 80, own), 'nor link-local');
  assert.ok(wide.checkAddress('203.0.113.7', '203.0.113.7', 80, own), 'nor this host');
  assert.equal(wide.checkAddress('10.1.2.3', '10.1.2.3', 80, own), null);
  assert.ok(wide.checkName('anything.example', 80), 'a name is looked up only when a host rule lists it');
  assert.equal(new EgressRules(parseEgressSpec('203.0.113.7/32:22')).checkAddress('203.0.113.7', '203.0.113.7', 22, own), null, 'exactly that address');
  assert.equal(new EgressRules(parseEgressSpec('127.0.0.0/8:9000')).checkAddress('127.0.0.1', '127.0.0.1', 9000, own), null, 'a loopback range');
});
