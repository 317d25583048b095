// `npm run bench -- --soak [--soak-seconds N]`: a bounded soak (minutes, not hours) of one Thaw server in
// its own process: sync invocations from 4 clients, a stream of Event invocations, a new published version
// and an alias shift every 20 s. Samples the server's RSS, open fds, instances and queue every 5 s; at the
// end drains the queue and checks every accepted event has its record. Writes docs/soak.md and
// docs/soak.svg (the samples over time), and prints the table.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { zipEntries } from '../src/codestore/index.ts';

interface Sample { t: number; rssMb: number; fds: number; instances: number; queued: number }

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
function request(url: string, method = 'POST', body = '{}', headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const code = (text: string) => zipEntries([{ path: 'index.mjs', data: Buffer.from(text) }]).toString('base64');

export async function soak(o: { root: string; seconds: number; progress(s: string): void; done(s: string): void }) {
  const dataDir = await mkdtemp(join(tmpdir(), 'thaw-soak-'));
  const cacheDir = await mkdtemp('/dev/shm/thaw-soak-');
  const child = spawn(process.execPath, [join(o.root, 'bench', 'server.ts'), dataDir, cacheDir, JSON.stringify({ eventPollIntervalMs: 50, policy: 'fixed:20s', freezeAfterMs: 5000, keepInvocations: 10_000_000, versionPrewarm: true })], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let buf = '';
      child.stdout!.on('data', (d) => { buf += d; const m = /THAW_URL (\S+)/.exec(buf); if (m) resolve(m[1]); });
      child.once('exit', (c) => reject(new Error(`server exited ${c}`)));
    });
    const api = async (path: string, method: string, body?: unknown) => {
      const r = await request(`${url}${path}`, method, body === undefined ? '' : JSON.stringify(body));
      if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.body}`);
      return r.body ? JSON.parse(r.body) : null;
    };
    await api('/2015-03-31/functions', 'POST', { FunctionName: 'sync', Runtime: 'nodejs24', Handler: 'index.handler', Code: { ZipFile: code('export const handler = async (e) => ({ n: e.n });') } });
    await api('/2015-03-31/functions', 'POST', { FunctionName: 'async', Runtime: 'nodejs24', Handler: 'index.handler', Code: { ZipFile: code('export const handler = async (e) => { await new Promise((r) => setTimeout(r, 5)); return e.n; };') } });
    await api('/2015-03-31/functions', 'POST', { FunctionName: 'rollout', Runtime: 'nodejs24', Handler: 'index.handler', Publish: true, Code: { ZipFile: code('export const handler = async () => "v1";') } });
    await api('/2015-03-31/functions/rollout/aliases', 'POST', { Name: 'live', FunctionVersion: '1' });

    const end = performance.now() + o.seconds * 1000;
    const samples: Sample[] = [];
    const counts = { sync: 0, syncErrors: 0, events: 0, eventRefusals: 0, deploys: 0, aliasShifts: 0 };
    const errors = new Map<string, number>();
    const accepted: string[] = [];
    const t0 = performance.now();
    const sample = async () => {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      const rssMb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
      const fds = (await readdir(`/proc/${child.pid}/fd`)).length;
      const instances = (await api('/thaw/v1/instances', 'GET')).instances.length;
      const queued = (await api('/thaw/v1/events', 'GET')).queued;
      samples.push({ t: (performance.now() - t0) / 1000, rssMb, fds, instances, queued });
      o.progress(`soak ${Math.round((performance.now() - t0) / 1000)}/${o.seconds} s: rss ${rssMb.toFixed(0)} MB, fds ${fds}, instances ${instances}, queued ${queued}, sync ${counts.sync} (${counts.syncErrors} errors), events ${counts.events}`);
    };
    const sync = async () => {
      for (let n = 0; performance.now() < end; n++) {
        const target = n % 3 === 0 ? 'rollout:live' : 'sync';
        try {
          const r = await request(`${url}/2015-03-31/functions/${target}/invocations`, 'POST', JSON.stringify({ n }));
          counts.sync++;
          if (r.status !== 200 || r.headers['x-amz-function-error']) { counts.syncErrors++; errors.set(`${r.status} ${r.body.slice(0, 80)}`, (errors.get(`${r.status} ${r.body.slice(0, 80)}`) ?? 0) + 1); }
        } catch (err) { counts.syncErrors++; errors.set(String(err), (errors.get(String(err)) ?? 0) + 1); }
      }
    };
    const events = async () => {
      for (let n = 0; performance.now() < end; n++) {
        const r = await request(`${url}/2015-03-31/functions/async/invocations`, 'POST', JSON.stringify({ n }), { 'x-amz-invocation-type': 'Event' });
        if (r.status === 202) { counts.events++; accepted.push(String(r.headers['x-amzn-requestid'])); } else counts.eventRefusals++;
        await sleep(50);
      }
    };
    const changes = async () => {
      for (let v = 2; performance.now() < end; v++) {
        await sleep(Math.min(20_000, Math.max(0, end - performance.now())));
        if (performance.now() >= end) break;
        const published = await api('/2015-03-31/functions/rollout/code', 'PUT', { ZipFile: code(`export const handler = async () => "v${v}";`), Publish: true });
        counts.deploys++;
        await api('/2015-03-31/functions/rollout/aliases/live', 'PUT', { FunctionVersion: String(Number(published.Version) - 1), RoutingConfig: { AdditionalVersionWeights: { [published.Version]: 0.5 } } });
        counts.aliasShifts++;
      }
    };
    const sampler = async () => { while (performance.now() < end) { await sample(); await sleep(5000); } };
    await Promise.all([sync(), sync(), sync(), sync(), events(), changes(), sampler()]);
    await sample();
    // Drain: every accepted event must have run and have its record.
    const drainUntil = performance.now() + 120_000;
    while ((await api('/thaw/v1/events', 'GET')).queued > 0 && performance.now() < drainUntil) await sleep(200);
    let lost = 0;
    for (const id of accepted) if ((await request(`${url}/thaw/v1/invocations/${id}`, 'GET', '')).status !== 200) lost++;
    const events2 = await api('/thaw/v1/events', 'GET');
    // Growth: the first sample after a minute (warmed up) against the last.
    const warm = samples.find((s) => s.t >= Math.min(60, o.seconds / 3)) ?? samples[0];
    const last = samples.at(-1)!;
    const result = { seconds: o.seconds, counts, lostEvents: lost, redeliveries: events2.redeliveries, errors: Object.fromEntries(errors), warm, last, samples };
    o.done(`soak: ${counts.sync} sync (${counts.syncErrors} errors), ${counts.events} events (${lost} lost), ${counts.deploys} deploys; rss ${warm.rssMb.toFixed(0)} -> ${last.rssMb.toFixed(0)} MB, fds ${warm.fds} -> ${last.fds}, instances ${warm.instances} -> ${last.instances}`);
    return result;
  } finally {
    child.kill('SIGTERM');
    if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
    agent.destroy();
    await rm(dataDir, { recursive: true, force: true });
    await rm(cacheDir, { recursive: true, force: true });
  }
}

/** Lines of RSS, fds and instances over time, each scaled to its own maximum (labelled). */
export function soakSvg(samples: Sample[]): string {
  const W = 760; const H = 300; const l = 50; const r = 170; const top = 30; const bottom = 40;
  const maxT = Math.max(1, ...samples.map((s) => s.t));
  const series: [keyof Sample, string, string][] = [['rssMb', 'RSS MB', '#c0392b'], ['fds', 'open fds', '#2980b9'], ['instances', 'instances', '#27ae60'], ['queued', 'queued events', '#8e44ad']];
  const x = (t: number) => l + (t / maxT) * (W - l - r);
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`, `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${l}" y="18" font-size="14" font-weight="bold">Soak: the server over time (each line scaled to its own maximum)</text>`,
    `<line x1="${l}" y1="${H - bottom}" x2="${W - r}" y2="${H - bottom}" stroke="#999"/>`, `<text x="${W - r}" y="${H - bottom + 16}" text-anchor="end" fill="#555">${maxT.toFixed(0)} s</text>`, `<text x="${l}" y="${H - bottom + 16}" fill="#555">0 s</text>`];
  series.forEach(([k, label, color], i) => {
    const max = Math.max(1, ...samples.map((s) => Number(s[k])));
    const y = (v: number) => H - bottom - (v / max) * (H - top - bottom);
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${samples.map((s) => `${x(s.t).toFixed(1)},${y(Number(s[k])).toFixed(1)}`).join(' ')}"/>`,
      `<text x="${W - r + 10}" y="${top + 20 * i + 10}" fill="${color}">${label} (max ${max.toFixed(k === 'rssMb' ? 0 : 0)})</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

export async function writeSoakReport(root: string, r: Awaited<ReturnType<typeof soak>>) {
  const lines = [
    '# Soak',
    '',
    `\`npm run bench -- --soak --soak-seconds ${r.seconds}\`: one server (keep-alive \`fixed:20s\`, freezing after 5 s, so versions that lose their traffic unload within the run; every invocation record kept, so every event's can be checked), 4 sync clients (two thirds to \`sync\`, a third to an alias that shifts), an \`Event\` every 50 ms, a new published version and an alias shift every 20 s. Chart: [soak.svg](soak.svg).`,
    '',
    '| | |',
    '|---|---|',
    `| sync invocations | ${r.counts.sync} (${r.counts.syncErrors} errors) |`,
    `| events accepted | ${r.counts.events} (${r.counts.eventRefusals} refused) |`,
    `| events lost (no record after the drain) | ${r.lostEvents} |`,
    `| deliveries that may have run twice | ${r.redeliveries} |`,
    `| deploys / alias shifts | ${r.counts.deploys} / ${r.counts.aliasShifts} |`,
    `| server RSS at ${r.warm.t.toFixed(0)} s → end | ${r.warm.rssMb.toFixed(1)} → ${r.last.rssMb.toFixed(1)} MB |`,
    `| open fds at ${r.warm.t.toFixed(0)} s → end | ${r.warm.fds} → ${r.last.fds} |`,
    `| instances at ${r.warm.t.toFixed(0)} s → end | ${r.warm.instances} → ${r.last.instances} |`,
    '',
    ...(Object.keys(r.errors).length ? ['Errors seen:', '', ...Object.entries(r.errors).map(([e, n]) => `- ${n}× ${e}`), ''] : []),
  ];
  await writeFile(join(root, 'docs', 'soak.md'), lines.join('\n'));
  await writeFile(join(root, 'docs', 'soak.svg'), soakSvg(r.samples));
  return lines.join('\n');
}
