// The Kubernetes manifests in deploy/kubernetes: every document valid against the Kubernetes schemas
// (kubernetes-models' validators, and TypeScript's excess-property check against its types, which catches a
// misspelt field that Kubernetes would silently drop), and consistent with each other, with the image, with
// docs/kubernetes.md and with the code: one image, every Secret and ConfigMap key that is referenced exists,
// Services select real pods and ports, probes ask paths the code serves, the command lines parse with the
// CLI's own parser. The manifests are JSON-shaped YAML (comments on lines of their own): no YAML parser is
// among the dependencies. Where kubectl is installed, `kubectl kustomize` must read them the same way.
// Then a cluster is run from them on this host: the bootstrap Pod's key commands, the control plane's and an
// agent's command lines with the env their pods would get (Secrets made as docs/kubernetes.md makes them,
// a real PostgreSQL and S3 server), the control plane as its pod's non-root user with the sealing key
// mounted read-only, and a function deployed through it runs on the agent.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, constants, readFileSync, readdirSync } from 'node:fs';
import { chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { CreateFunctionCommand, InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { main } from '../src/cli/index.ts';
import { signRequest } from '../src/gateway/index.ts';
import { postgresBinDir, startPostgres, type TestPostgres } from './postgres.ts';
import { startS3, type RunningS3 } from './s3.ts';
import { eventually, fnSource, pkg, processesUnder } from './helpers.ts';

const ROOT = resolve(import.meta.dirname, '..');
const DIR = join(ROOT, 'deploy', 'kubernetes');
const DOCS = join(ROOT, 'docs', 'kubernetes.md');
const DOCKERFILE = join(ROOT, 'deploy', 'Dockerfile');
const ROLE = 'arn:aws:iam::000000000000:role/x';
/** The kustomizations: the cluster, and the one-off Pod that makes the first keys. */
const KUSTOMIZATIONS = ['.', 'bootstrap'];

type Obj = Record<string, any>;
interface Doc { kustomization: string; file: string; index: number; obj: Obj }

/** One file's documents: `---` separates them, whole-line `#` comments are YAML's and dropped. */
export function parseManifest(text: string): Obj[] {
  return text.split(/^---\s*$/m)
    .map((part) => part.split('\n').filter((line) => !/^\s*#/.test(line)).join('\n').trim())
    .filter(Boolean)
    .map((json) => JSON.parse(json));
}

const kustomizations = new Map(KUSTOMIZATIONS.map((k) => [k, parseManifest(readFileSync(join(DIR, k, 'kustomization.yaml'), 'utf8'))[0]]));
const docs: Doc[] = [...kustomizations].flatMap(([k, kz]) => (kz.resources as string[]).flatMap((file) =>
  parseManifest(readFileSync(join(DIR, k, file), 'utf8')).map((obj, index) => ({ kustomization: k, file: join(k, file), index, obj }))));
const docsText = readFileSync(DOCS, 'utf8');

const named = (kind: string, name: string) => docs.find((d) => d.obj.kind === kind && d.obj.metadata.name === name)?.obj;
const workloads = docs.filter((d) => ['Deployment', 'DaemonSet', 'StatefulSet', 'Pod'].includes(d.obj.kind));
const podSpec = (w: Obj): Obj => (w.kind === 'Pod' ? w.spec : w.spec.template.spec);
const podLabels = (w: Obj): Obj => (w.kind === 'Pod' ? w.metadata.labels : w.spec.template.metadata.labels);
const containersOf = (w: Obj): Obj[] => [...(podSpec(w).initContainers ?? []), ...podSpec(w).containers];
const allContainers = workloads.flatMap((w) => containersOf(w.obj).map((c) => ({ workload: w.obj, c })));
const workload = (kind: string, component: string) => workloads.find((w) => w.obj.kind === kind && w.obj.metadata.labels['app.kubernetes.io/component'] === component)!.obj;
const control = workload('Deployment', 'control');
const agent = workload('DaemonSet', 'agent');
const keysPod = workload('Pod', 'bootstrap');

/** The Secrets docs/kubernetes.md tells the operator to create, with their keys. */
function secretsInDocs(text: string): Map<string, Set<string>> {
  const joined = text.replace(/\\\n\s*/g, ' ');
  const out = new Map<string, Set<string>>();
  for (const m of joined.matchAll(/create secret generic ([\w.-]+)([^\n]*)/g)) {
    const keys = [...m[2].matchAll(/--from-(?:literal|file)=([\w.-]+)=/g)].map((k) => k[1]);
    out.set(m[1], new Set(keys));
  }
  return out;
}

/** kubernetes-models' validator for the document's apiVersion and kind; throws with the schema's complaint. */
async function validateSchema(obj: Obj): Promise<void> {
  const group = obj.apiVersion === 'v1' ? 'v1' : obj.apiVersion;
  const mod = await import(`kubernetes-models/${group}`);
  const Model = mod[obj.kind];
  if (!Model) throw new Error(`kubernetes-models has no ${obj.apiVersion} ${obj.kind}`);
  new Model(obj).validate();
}

/**
 * TypeScript's check of each document as an object literal of kubernetes-models' type for its kind: the
 * schemas accept unknown fields, the type check names them. Answers the diagnostics, one line each.
 */
function typeCheck(objs: Obj[]): string[] {
  const file = join(ROOT, 'test', '__kubernetes_manifests__.ts');
  const source = objs.map((o, i) => {
    const group = o.apiVersion === 'v1' ? 'v1' : o.apiVersion;
    return `import type { I${o.kind} as T${i} } from 'kubernetes-models/${group}';\nexport const doc${i}: T${i} = ${JSON.stringify(o, null, 1)};\n`;
  }).join('');
  const options: ts.CompilerOptions = { strict: true, noEmit: true, skipLibCheck: true, types: [], target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (name, lang, ...rest) => name === file ? ts.createSourceFile(name, source, lang) : getSourceFile.call(host, name, lang, ...rest);
  host.fileExists = (name) => name === file || fileExists.call(host, name);
  host.readFile = (name) => name === file ? source : readFile.call(host, name);
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : null;
    const line = where ? d.file!.text.split('\n')[where.line].trim() : '';
    return `${ts.flattenDiagnosticMessageText(d.messageText, '\n')} (at ${line})`;
  });
}

/** `$(VAR)` in a command line, as the kubelet expands it from the container's env. */
const varsIn = (args: string[]) => args.flatMap((a) => [...a.matchAll(/\$\(([A-Za-z_][\w]*)\)/g)].map((m) => m[1]));

/** The value a container's env var gets, from the manifests' ConfigMaps and the given Secrets and pod fields. */
function resolveEnv(c: Obj, secrets: Record<string, Record<string, string>>, fields: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    const v = e.value ?? (e.valueFrom?.configMapKeyRef ? named('ConfigMap', e.valueFrom.configMapKeyRef.name)?.data?.[e.valueFrom.configMapKeyRef.key]
      : e.valueFrom?.secretKeyRef ? secrets[e.valueFrom.secretKeyRef.name]?.[e.valueFrom.secretKeyRef.key]
      : e.valueFrom?.fieldRef ? fields[e.valueFrom.fieldRef.fieldPath] : undefined);
    if (v !== undefined) env[e.name] = v;
  }
  return env;
}
const expand = (args: string[], env: Record<string, string>) => args.map((a) => a.replace(/\$\(([A-Za-z_]\w*)\)/g, (_, v) => env[v] ?? `$(${v})`));

/** Runs the CLI's own parser on a command line (with --help, so nothing starts): exit code and output. */
async function cliParses(args: string[]): Promise<{ code: number; text: string }> {
  let text = '';
  const io = { out: (s: string) => { text += s; }, err: (s: string) => { text += s; }, tty: false, env: {}, signal: undefined };
  const code = await main([...args, '--help'], io);
  return { code, text };
}

/** Whether a path is registered as a GET route by some source file of src/ (tests excluded). */
function servedPaths(): Set<string> {
  const out = new Set<string>();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.ts$/.test(e.name) && !/\.(test|case)\.ts$/.test(e.name)) {
        for (const m of readFileSync(p, 'utf8').matchAll(/(?:on\(\s*'GET'\s*,|\.get\()\s*'(\/[^'{}]*)'/g)) out.add(m[1]);
      }
    }
  };
  walk(join(ROOT, 'src'));
  return out;
}

/** A signed request, as the AWS SDK and `thaw` make them with a key. */
async function signed(url: string, key: Key, method = 'GET'): Promise<Response> {
  const u = new URL(url);
  const headers = await signRequest({ method, url: u, headers: {}, body: undefined, accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey, region: 'us-east-1' });
  return fetch(u, { method, headers });
}
interface Key { AccessKeyId: string; SecretAccessKey: string }

describe('deploy/kubernetes', () => {
  it('each kustomization.yaml lists every manifest of its directory, and each file parses', () => {
    for (const [k, kz] of kustomizations) {
      const files = readdirSync(join(DIR, k)).filter((f) => /\.(ya?ml|json)$/.test(f) && f !== 'kustomization.yaml').sort();
      assert.deepEqual([...kz.resources].sort(), files, `${k}/kustomization.yaml`);
    }
    assert.ok(docs.length >= 8, `only ${docs.length} documents`);
  });

  it('every document validates against the Kubernetes schema of its kind', async () => {
    for (const d of docs) {
      await assert.doesNotReject(validateSchema(d.obj), `${d.file} #${d.index} (${d.obj.kind} ${d.obj.metadata?.name})`);
    }
  });

  it('no document has a field its kind does not know (TypeScript against kubernetes-models types)', () => {
    assert.deepEqual(typeCheck(docs.map((d) => d.obj)), []);
  });

  it('the checks catch a misspelt field, a value of the wrong type and a flag a command lacks', async () => {
    const typo = structuredClone(control);
    typo.spec.template.spec.containers[0].readinesProbe = typo.spec.template.spec.containers[0].readinessProbe;
    const problems = typeCheck([typo]);
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problems[0], /readinesProbe/);
    const wrong = structuredClone(agent);
    wrong.spec.template.spec.terminationGracePeriodSeconds = '120';
    await assert.rejects(validateSchema(wrong), /terminationGracePeriodSeconds must be integer/);
    const unknown = await cliParses(['agent', '--no-such-flag']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.text, /no-such-flag/);
  });

  it('every pod runs the same image, the one both kustomizations set', () => {
    assert.deepEqual([...new Set(allContainers.map(({ c }) => c.image))], ['thaw']);
    const set = [...kustomizations.values()].map((kz) => JSON.stringify(kz.images));
    assert.equal(new Set(set).size, 1, 'deploy/kubernetes and its bootstrap/ set the same image');
    assert.ok(kustomizations.get('.')!.images.some((i: Obj) => i.name === 'thaw' && i.newName && i.newTag));
  });

  it('every Secret and ConfigMap key referenced exists: ConfigMaps here, Secrets as docs/kubernetes.md creates them', () => {
    const secrets = secretsInDocs(docsText);
    const used = new Set<string>();
    const need = (kind: 'Secret' | 'ConfigMap', name: string, key: string | undefined, optional: boolean, where: string) => {
      used.add(`${kind}/${name}`);
      const keys = kind === 'Secret' ? secrets.get(name) : (named('ConfigMap', name) ? new Set(Object.keys(named('ConfigMap', name)!.data ?? {})) : undefined);
      if (optional && (!keys || (key && !keys.has(key)))) return;
      assert.ok(keys, `${where}: ${kind} ${name} is neither in the manifests nor created by docs/kubernetes.md`);
      if (key) assert.ok(keys.has(key), `${where}: ${kind} ${name} has no key ${key} (it has ${[...keys].join(', ')})`);
    };
    for (const { workload: w, c } of allContainers) {
      const where = `${w.kind} ${w.metadata.name}, container ${c.name}`;
      for (const e of c.env ?? []) {
        const s = e.valueFrom?.secretKeyRef, m = e.valueFrom?.configMapKeyRef;
        if (s) need('Secret', s.name, s.key, s.optional === true, `${where}, env ${e.name}`);
        if (m) need('ConfigMap', m.name, m.key, m.optional === true, `${where}, env ${e.name}`);
      }
      for (const f of c.envFrom ?? []) {
        if (f.secretRef) need('Secret', f.secretRef.name, undefined, f.secretRef.optional === true, where);
        if (f.configMapRef) need('ConfigMap', f.configMapRef.name, undefined, f.configMapRef.optional === true, where);
      }
    }
    for (const w of workloads) {
      for (const v of podSpec(w.obj).volumes ?? []) {
        if (v.secret) for (const item of v.secret.items ?? [{}]) need('Secret', v.secret.secretName, item.key, v.secret.optional === true, `${w.obj.metadata.name} volume ${v.name}`);
        if (v.configMap) for (const item of v.configMap.items ?? [{}]) need('ConfigMap', v.configMap.name, item.key, v.configMap.optional === true, `${w.obj.metadata.name} volume ${v.name}`);
      }
    }
    assert.deepEqual([...secrets.keys()].filter((s) => !used.has(`Secret/${s}`)), [], 'docs/kubernetes.md creates Secrets nothing uses');
  });

  it('every volume mounted is declared, and every $(VAR) of a command line is in the container\'s env', () => {
    for (const { workload: w, c } of allContainers) {
      const volumes = new Set((podSpec(w).volumes ?? []).map((v: Obj) => v.name));
      for (const m of c.volumeMounts ?? []) assert.ok(volumes.has(m.name), `${w.metadata.name}: mount of undeclared volume ${m.name}`);
      const env = new Set((c.env ?? []).map((e: Obj) => e.name));
      for (const v of varsIn([...(c.command ?? []), ...(c.args ?? [])])) assert.ok(env.has(v), `${w.metadata.name}: $(${v}) is not in the env, so Kubernetes would pass it literally`);
    }
  });

  it('each Service selects the pods of a workload and a port they declare; URLs name Services that exist', () => {
    for (const d of docs.filter((x) => x.obj.kind === 'Service' && x.obj.spec.type !== 'ExternalName')) {
      const svc = d.obj;
      const target = workloads.map((w) => w.obj).find((w) => Object.entries(svc.spec.selector).every(([k, v]) => podLabels(w)[k] === v));
      assert.ok(target, `Service ${svc.metadata.name} selects no workload's pods`);
      const ports = containersOf(target).flatMap((c) => c.ports ?? []);
      for (const p of svc.spec.ports) {
        assert.ok(ports.some((cp: Obj) => cp.name === p.targetPort || cp.containerPort === p.targetPort), `Service ${svc.metadata.name} targets port ${p.targetPort}, which ${target.metadata.name} does not declare`);
      }
    }
    // URLs in the ConfigMap and docs' Secrets whose host is a bare name are in-cluster names: Services here.
    const urls = [...Object.values(named('ConfigMap', 'thaw-config')!.data as Record<string, string>), ...[...docsText.matchAll(/postgres:\/\/[^\s@'"]+@[^\s'"]+/g)].map((m) => m[0])];
    let checked = 0;
    for (const raw of urls.filter((u) => /^(https?|postgres):\/\//.test(u))) {
      const url = new URL(raw);
      if (url.hostname.includes('.')) continue;
      const svc = named('Service', url.hostname);
      assert.ok(svc, `${raw} names a Service ${url.hostname} that the manifests do not define`);
      if (svc.spec.type !== 'ExternalName') assert.ok(svc.spec.ports.some((p: Obj) => String(p.port) === url.port), `${raw}: Service ${url.hostname} has no port ${url.port}`);
      checked++;
    }
    assert.ok(checked >= 3, `only ${checked} in-cluster URLs found`);
  });

  it('every container has resource requests; long-running ones have readiness and liveness probes on a port they declare', () => {
    for (const { workload: w, c } of allContainers) {
      assert.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory, `${w.metadata.name}: no cpu and memory requests`);
      if (w.kind === 'Pod') continue;
      for (const kind of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
        const p = c[kind]?.httpGet;
        if (kind !== 'startupProbe') assert.ok(p, `${w.metadata.name}: no ${kind}`);
        if (p) assert.ok((c.ports ?? []).some((cp: Obj) => cp.name === p.port || cp.containerPort === p.port), `${w.metadata.name}: ${kind} on undeclared port ${p.port}`);
      }
    }
  });

  it('probes ask paths the code serves', () => {
    const served = servedPaths();
    const paths = allContainers.flatMap(({ workload: w, c }) => ['readinessProbe', 'livenessProbe', 'startupProbe'].filter((k) => c[k]).map((k) => `${w.metadata.name}: ${c[k].httpGet.path}`));
    assert.ok(paths.length >= 6);
    assert.deepEqual(paths.filter((p) => !served.has(p.split(': ')[1])), []);
  });

  it('every container\'s command line parses with the CLI\'s own flags', async () => {
    for (const { workload: w, c } of allContainers) {
      // The image's entry point is `thaw`; the agent's wraps it (deploy/agent-entrypoint.sh ends in `exec thaw "$@"`).
      if (c.command) assert.deepEqual(c.command, ['/opt/thaw/deploy/agent-entrypoint.sh'], `${w.metadata.name}: unexpected command`);
      const args = expand(c.args, { THAW_CONTROL: 'http://thaw-control:8080', POD_IP: '10.0.0.7', NODE_NAME: 'node-1' });
      const r = await cliParses(args);
      assert.equal(r.code, 0, `${w.metadata.name}/${c.name}: thaw ${args.join(' ')}: ${r.text}`);
    }
    assert.match(readFileSync(join(ROOT, 'deploy', 'agent-entrypoint.sh'), 'utf8'), /^exec thaw "\$@"$/m);
  });

  it('the THAW_* variables the containers set are ones the code reads', () => {
    const source = readdirSync(join(ROOT, 'src'), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && /\.ts$/.test(e.name) && !/\.(test|case)\.ts$/.test(e.name))
      .map((e) => readFileSync(join(e.parentPath, e.name), 'utf8')).join('\n');
    const unread = allContainers.flatMap(({ workload: w, c }) => (c.env ?? []).filter((e: Obj) => e.name.startsWith('THAW_') && !source.includes(`env.${e.name}`)).map((e: Obj) => `${w.metadata.name}: ${e.name}`));
    assert.deepEqual(unread, []);
  });

  it('the control plane runs unprivileged, and only the agents get what the sandbox needs', () => {
    for (const w of [control, keysPod]) {
      const pod = podSpec(w);
      assert.equal(pod.securityContext.runAsNonRoot, true);
      assert.notEqual(pod.securityContext.runAsUser, 0);
      for (const c of containersOf(w)) {
        assert.equal(c.securityContext.allowPrivilegeEscalation, false);
        assert.equal(c.securityContext.readOnlyRootFilesystem, true);
        assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
        // The sealing key is mounted where the key ring reads it (src/gateway/keys.ts: <data>/keys/access.key).
        const keys = c.volumeMounts.find((m: Obj) => m.mountPath.endsWith('/keys'));
        assert.equal(pod.volumes.find((v: Obj) => v.name === keys?.name)?.secret?.secretName, 'thaw-sealing-key', `${w.metadata.name}/${c.name}`);
      }
    }
    assert.match(readFileSync(join(ROOT, 'src', 'gateway', 'keys.ts'), 'utf8'), /join\(dataDir, 'keys', 'access\.key'\)/);

    const a = podSpec(agent);
    const ac = a.containers[0];
    assert.equal(ac.securityContext.privileged, true);
    assert.equal(ac.securityContext.runAsUser, 0);
    const data = ac.args[ac.args.indexOf('--data') + 1];
    assert.ok(a.volumes.find((v: Obj) => v.name === ac.volumeMounts.find((m: Obj) => m.mountPath === data)?.name)?.hostPath, 'the agent\'s data dir (its package cache) is a hostPath');
    assert.equal(a.volumes.find((v: Obj) => v.name === ac.volumeMounts.find((m: Obj) => m.mountPath === '/dev/shm')?.name)?.emptyDir?.medium, 'Memory', '/dev/shm, where the code cache lives, is a tmpfs');
    assert.equal(ac.resources.limits?.memory, undefined, 'no memory limit over the instances');
    // Agents run tenants' code: no credentials of the store or the object store in their pods.
    assert.deepEqual((ac.env as Obj[]).filter((e) => /^(AWS_|THAW_STORE|THAW_ORIGIN)/.test(e.name)).map((e) => e.name), []);
    assert.equal(named('Namespace', 'thaw')!.metadata.labels['pod-security.kubernetes.io/enforce'], 'privileged');
  });

  it('the image has the agent\'s entry point and every program the code runs', () => {
    const dockerfile = readFileSync(DOCKERFILE, 'utf8');
    const entry = (agent.spec.template.spec.containers[0].command[0] as string).slice('/opt/thaw/'.length);
    accessSync(join(ROOT, entry), constants.X_OK);
    assert.match(dockerfile, /^WORKDIR \/opt\/thaw$/m);
    assert.ok(dockerfile.includes(`COPY ${entry} ./${entry}`), `the Dockerfile copies ${entry}`);
    assert.match(dockerfile, /^COPY --from=build \/opt\/thaw \/opt\/thaw$/m);
    assert.match(dockerfile, /^ENTRYPOINT \["thaw"\]$/m);
    assert.match(readFileSync(join(ROOT, 'deploy', 'Dockerfile.dockerignore'), 'utf8'), new RegExp(`^!${entry.replace(/\./g, '\\.')}$`, 'm'));
    // Programs the code runs by path or name, and the Debian package that has each (a|b: either will do,
    // where the code looks for both).
    const PACKAGE: Record<string, string> = {
      bwrap: 'bubblewrap', setpriv: 'util-linux', nsenter: 'util-linux', perl: 'perl', ip: 'iproute2', nft: 'nftables',
      true: 'coreutils', sh: 'dash', zip: 'zip', unzip: 'unzip', tar: 'tar', mksquashfs: 'squashfs-tools', unsquashfs: 'squashfs-tools',
      'mkfs.erofs': 'erofs-utils', squashfuse: 'squashfuse', fusermount3: 'fuse3', fusermount: 'fuse3|fuse', mount: 'mount', umount: 'mount',
      losetup: 'mount', swapon: 'mount', swapoff: 'mount', mkswap: 'util-linux', ps: 'procps',
    };
    const installed = new Set([...dockerfile.matchAll(/apt-get install[^&]*/g)].at(-1)![0].split(/\s+/));
    const essential = new Set(['coreutils', 'dash', 'mount', 'tar', 'util-linux']); // in every Debian image
    const programs = new Set<string>();
    for (const e of readdirSync(join(ROOT, 'src'), { recursive: true, withFileTypes: true })) {
      if (!e.isFile() || !/\.(ts|pl)$/.test(e.name) || /\.(test|case)\.ts$/.test(e.name)) continue;
      const text = readFileSync(join(e.parentPath, e.name), 'utf8');
      for (const m of text.matchAll(/'\/(?:usr\/)?s?bin\/([\w.-]+)'/g)) programs.add(m[1]);
      for (const m of text.matchAll(/(?:spawn|spawnSync|execFile|execFileSync)\(\s*'([\w.-]+)'/g)) programs.add(m[1]);
    }
    assert.ok(programs.has('bwrap') && programs.has('mksquashfs'), `the scan of src/ found only ${[...programs].join(', ')}`);
    for (const p of programs) {
      assert.ok(PACKAGE[p], `the code runs ${p}: add it and its Debian package to this table and to deploy/Dockerfile`);
      assert.ok(PACKAGE[p].split('|').some((pkg) => essential.has(pkg) || installed.has(pkg)), `the code runs ${p}, but deploy/Dockerfile does not install ${PACKAGE[p]}`);
    }
  });
});

describe('deploy/kubernetes read by kubectl', { skip: spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0 ? false : 'kubectl is not installed (to enable: install kubectl, which has kustomize built in)' }, () => {
  it('`kubectl kustomize` renders the same objects JSON.parse read, in the namespace, with the image set', () => {
    for (const [k, kz] of kustomizations) {
      const rendered = spawnSync('kubectl', ['kustomize', join(DIR, k)], { encoding: 'utf8' });
      assert.equal(rendered.status, 0, rendered.stderr);
      // `label --local` reads YAML offline and prints JSON; removing a label nobody has changes nothing else.
      const json = spawnSync('kubectl', ['label', '--local', '-f', '-', 'thaw.dev/none-', '-o', 'json'], { input: rendered.stdout, encoding: 'utf8', env: { ...process.env, KUBECONFIG: '/dev/null' } });
      assert.equal(json.status, 0, json.stderr);
      const objs = json.stdout.split(/\n(?=\{)/).map((t) => JSON.parse(t));
      const image = `${kz.images[0].newName}:${kz.images[0].newTag}`;
      const expected = docs.filter((d) => d.kustomization === k).map(({ obj }) => {
        const o = structuredClone(obj);
        if (o.kind !== 'Namespace') o.metadata.namespace = kz.namespace;
        if (o.kind === 'Pod' || o.spec?.template) for (const c of containersOf(o)) c.image = image;
        return o;
      });
      const key = (o: Obj) => `${o.kind}/${o.metadata.name}`;
      assert.deepEqual(objs.map(key).sort(), expected.map(key).sort());
      for (const o of objs) assert.deepEqual(o, expected.find((e) => key(e) === key(o)));
    }
  });
});

describe('a cluster from the manifests\' own command lines, environments and Secrets', { skip: postgresBinDir() ? false : 'PostgreSQL is not installed (to enable: apt-get install postgresql)' }, () => {
  let pg: TestPostgres | undefined;
  let s3: RunningS3 | undefined;
  let dir = '';
  const procs: { child: ChildProcess; exited: Promise<void> }[] = [];
  let controlUrl = '';
  let agentUrl = '';
  let agentCache = '';
  let admin: Key;
  const metricsToken = randomBytes(24).toString('hex');
  const secrets: Record<string, Record<string, string>> = {};
  const asRoot = process.getuid?.() === 0;

  /** A pod's volumes on this host: its data dir, and the sealing-key Secret in a keys/ that it cannot write. */
  async function podDir(name: string, sealingKey: string): Promise<string> {
    const data = join(dir, name);
    await mkdir(join(data, 'keys'), { recursive: true });
    await writeFile(join(data, 'keys', 'access.key'), sealingKey, { mode: 0o440 });
    if (asRoot) { await chown(data, 10001, 10001); await chown(join(data, 'keys', 'access.key'), 0, 10001); }
    return data;
  }

  /** Starts a container's command line as a process; resolves with its stdout once `ready` matches it. */
  async function run(args: string[], env: Record<string, string>, ready: RegExp, user: { uid?: number; gid?: number }): Promise<RegExpExecArray> {
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'thaw.js'), ...args], { env: { PATH: process.env.PATH!, ...env }, stdio: ['ignore', 'pipe', 'pipe'], ...user });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    procs.push({ child, exited });
    let out = '', err = '';
    child.stdout!.on('data', (b) => { out += b; });
    child.stderr!.on('data', (b) => { err += b; });
    return eventually(async () => {
      if (child.exitCode !== null) throw new Error(`thaw ${args[0]} exited ${child.exitCode}: ${err}`);
      return ready.exec(out);
    }, `thaw ${args[0]} to start (stderr: ${err})`, 90_000);
  }

  before(async () => {
    const started = await startPostgres();
    if ('skip' in started) throw new Error(started.skip);
    pg = started;
    s3 = await startS3();
    dir = await mkdtemp(join(tmpdir(), 'thaw-k8s-'));
    if (asRoot) await chown(dir, 10001, 10001);
    // The Secrets, made as docs/kubernetes.md makes them.
    const sealingKey = randomBytes(32).toString('base64');
    secrets['thaw-store'] = { THAW_STORE: pg.url };
    secrets['thaw-s3'] = { AWS_ACCESS_KEY_ID: s3.env.AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: s3.env.AWS_SECRET_ACCESS_KEY };
    secrets['thaw-metrics'] = { THAW_METRICS_TOKEN: metricsToken };
    const atPod = (args: string[], data: string) => args.map((a) => a.replace(/^\/var\/lib\/thaw$/, data));

    // Step 4: the bootstrap Pod's containers, in order, each printing its key.
    const keysData = await podDir('keys', sealingKey);
    const made: Record<string, Key> = {};
    for (const c of containersOf(keysPod)) {
      let out = '', err = '';
      const io = { out: (t: string) => { out += t; }, err: (t: string) => { err += t; }, tty: false, env: resolveEnv(c, secrets), signal: undefined };
      assert.equal(await main(atPod(c.args, keysData), io), 0, err);
      made[c.name] = JSON.parse(out);
    }
    admin = made.admin;
    secrets['thaw-agent-key'] = { THAW_ACCESS_KEY_ID: made.agent.AccessKeyId, THAW_SECRET_ACCESS_KEY: made.agent.SecretAccessKey };

    // Step 5: the control plane, as its pod's user. What differs from a cluster: this host's S3 server and
    // bucket, the data dir, a free port.
    const c = control.spec.template.spec.containers[0];
    const controlData = await podDir('control', sealingKey);
    const env = { ...resolveEnv(c, secrets), AWS_ENDPOINT_URL_S3: s3.endpoint, THAW_ORIGIN: `s3://${s3.bucket}`, THAW_DATA: controlData, HOME: controlData, TMPDIR: dir };
    const args = c.args.map((a: string, i: number) => (c.args[i - 1] === '--port' ? '0' : a));
    const pod = control.spec.template.spec.securityContext;
    controlUrl = (await run(args, env, /Thaw is up at (http:\/\/\S+)/, asRoot ? { uid: pod.runAsUser, gid: pod.runAsGroup } : {}))[1];

    // Step 6: an agent, as root. What differs: the control plane's address, a free port, the data dir.
    const a = agent.spec.template.spec.containers[0];
    const port = await freePort();
    const agentData = join(dir, 'agent');
    const agentEnv = { ...resolveEnv(a, secrets, { 'status.podIP': '127.0.0.1', 'spec.nodeName': 'k8s-test-node' }), THAW_CONTROL: controlUrl };
    const agentArgs = atPod(expand(a.args, agentEnv), agentData).map((x) => x.replace(/:9090$/, `:${port}`));
    agentUrl = (await run(agentArgs, agentEnv, /Thaw agent \S+ is up at (http:\/\/\S+),/, {}))[1];
    agentCache = `/dev/shm/thaw-${process.getuid?.() ?? 'u'}-${createHash('sha256').update(agentData).digest('hex').slice(0, 12)}`;
  });

  after(async () => {
    for (const p of procs.toReversed()) {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
      await p.exited;
    }
    const left = agentCache ? await processesUnder(agentCache) : [];
    await s3?.stop();
    await pg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
    if (agentCache) await rm(agentCache, { recursive: true, force: true });
    assert.deepEqual(left, [], 'instance processes outlived the agent');
  });

  it('the control plane answers its probes, on PostgreSQL', async () => {
    const c = control.spec.template.spec.containers[0];
    for (const kind of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
      const res = await fetch(new URL(c[kind].httpGet.path, controlUrl));
      assert.equal(res.status, 200, `${kind}: ${await res.clone().text()}`);
      const body = await res.json() as Obj;
      assert.equal(body.status, 'ok');
      assert.equal(body.store, 'postgres');
    }
  });

  it('the agent answers its probes and joined under its node\'s name, advertising the pod address', async () => {
    const c = agent.spec.template.spec.containers[0];
    for (const kind of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
      const res = await fetch(new URL(c[kind].httpGet.path, agentUrl));
      assert.equal(res.status, 200, `${kind}: ${await res.clone().text()}`);
      await res.arrayBuffer();
    }
    assert.equal(new URL(agentUrl).hostname, '127.0.0.1');
    const fleet = await eventually(async () => { const v = await (await signed(`${controlUrl}/thaw/v1/cluster`, admin)).json() as Obj; return v.agents?.length && v; }, 'the agent in the fleet');
    assert.deepEqual(fleet.agents.map((x: Obj) => x.name), ['k8s-test-node']);
  });

  it('a function deployed through the control plane (package in S3) runs on the agent', async () => {
    const lambda = new LambdaClient({ endpoint: controlUrl, region: 'us-east-1', credentials: { accessKeyId: admin.AccessKeyId, secretAccessKey: admin.SecretAccessKey }, maxAttempts: 1 });
    try {
      await lambda.send(new CreateFunctionCommand({ FunctionName: 'k8s', Runtime: 'nodejs24.x', Handler: 'index.handler', Role: ROLE, Code: { ZipFile: pkg({ 'index.mjs': fnSource('return { cwd: process.cwd(), n: event.n + 1 };') }) } }));
      const r = await lambda.send(new InvokeCommand({ FunctionName: 'k8s', Payload: Buffer.from(JSON.stringify({ n: 41 })) }));
      assert.equal(r.FunctionError, undefined, Buffer.from(r.Payload ?? []).toString());
      assert.equal(JSON.parse(Buffer.from(r.Payload!).toString()).n, 42);
    } finally {
      lambda.destroy();
    }
  });

  it('Prometheus reads /metrics with the token of the thaw-metrics Secret, and nobody without it', async () => {
    const ok = await fetch(new URL('/metrics', controlUrl), { headers: { authorization: `Bearer ${metricsToken}` } });
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /^# (HELP|TYPE) /m);
    const anon = await fetch(new URL('/metrics', controlUrl));
    assert.ok(anon.status === 401 || anon.status === 403, String(anon.status));
    await anon.arrayBuffer();
  });
});

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}
