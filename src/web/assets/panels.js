// The dashboard's panels, each drawn from one or a few API calls: functions (versions, aliases, policy), live
// instances by state and tier, cold starts over time, the invocation list with a chosen one's waterfall, why
// and logs, and the decision log. Everything shown is set as text (dom.js).
import { api, ApiError, fnPath } from './api.js';
import { timeSeries, waterfall } from './charts.js';
import { byId, clock, el, fill, mb, ms, pct } from './dom.js';

/** The starts that began an instance (the cold starts, by whichever path). */
const STARTED = new Set(['cold', 'pooled', 'restored']);

/** An instance's memory tier, from its state. */
const TIER = /** @type {Record<string, string>} */ ({ idle: 'warm', busy: 'warm', frozen: 'frozen', paged: 'paged', starting: 'starting', initializing: 'starting', stopping: 'stopping' });

/** @param {string} text @param {string} [kind] */
const pill = (text, kind = text) => el('span', { class: `pill ${kind}` }, text);

/** @param {string} message @param {number} columns */
const emptyRow = (message, columns) => el('tr', {}, el('td', { colspan: columns, class: 'muted' }, message));

export async function renderFunctions() {
  /** @type {any[]} */
  const fns = [];
  let marker = '';
  for (let page = 0; page < 20; page++) {
    const r = await api('GET', `/2015-03-31/functions/?MaxItems=50${marker ? `&Marker=${encodeURIComponent(marker)}` : ''}`);
    fns.push(...r.Functions);
    if (!r.NextMarker) break;
    marker = r.NextMarker;
  }
  const rows = await Promise.all(fns.map(async (f) => {
    const name = f.FunctionName;
    const [versions, aliases, policy] = await Promise.all([
      api('GET', `/2015-03-31/functions/${fnPath(name)}/versions`),
      api('GET', `/2015-03-31/functions/${fnPath(name)}/aliases`),
      api('GET', `/thaw/v1/functions/${fnPath(name)}/policy`).catch(() => null),
    ]);
    const published = versions.Versions.map((/** @type {any} */ v) => v.Version).filter((/** @type {string} */ v) => v !== '$LATEST');
    return el('tr', { 'data-function': name },
      el('td', {}, el('strong', {}, name)),
      el('td', {}, f.Runtime ?? f.PackageType ?? ''),
      el('td', { class: 'num' }, `${f.MemorySize} MB`),
      el('td', {}, published.length ? published.join(', ') : '$LATEST only'),
      el('td', {}, ...aliases.Aliases.map((/** @type {any} */ a) => pill(`${a.Name} → ${a.FunctionVersion}${a.RoutingConfig?.AdditionalVersionWeights ? ' (weighted)' : ''}`, 'alias'))),
      el('td', {}, policy ? `${policy.policy}${policy.explicit ? '' : ' (node default)'}` : ''),
      el('td', { class: 'muted' }, f.Description ?? ''));
  }));
  fill(byId('functions-body'), ...(rows.length ? rows : [emptyRow('No functions yet: deploy one with `thaw deploy` or the AWS SDK.', 7)]));
}

export async function renderInstances() {
  const { instances } = await api('GET', '/thaw/v1/instances');
  /** @type {Map<string, { states: Map<string, number>, tiers: Map<string, number> }>} */
  const byFn = new Map();
  for (const i of instances) {
    const s = byFn.get(i.functionName) ?? { states: new Map(), tiers: new Map() };
    s.states.set(i.state, (s.states.get(i.state) ?? 0) + 1);
    const tier = TIER[i.state] ?? i.state;
    s.tiers.set(tier, (s.tiers.get(tier) ?? 0) + 1);
    byFn.set(i.functionName, s);
  }
  const counts = (/** @type {Map<string, number>} */ m) => [...m].map(([k, n]) => pill(`${n} ${k}`, k));
  fill(byId('instances-summary'), ...[...byFn].map(([fn, s]) => el('div', { class: 'card', 'data-function': fn },
    el('h3', {}, fn), el('div', {}, 'state ', ...counts(s.states)), el('div', {}, 'tier ', ...counts(s.tiers)))));
  const rows = instances.map((/** @type {any} */ i) => el('tr', { 'data-instance': i.id },
    el('td', {}, el('code', {}, i.id)), el('td', {}, i.functionName), el('td', {}, i.version),
    el('td', { class: 'state' }, pill(i.state)), el('td', { class: 'tier' }, pill(TIER[i.state] ?? i.state)),
    el('td', { class: 'num' }, i.invocations), el('td', { class: 'num' }, i.rssBytes ? mb(i.rssBytes) : `${i.memoryMb} MB max`),
    el('td', {}, `${i.origin}${i.reserved ? ', reserved' : ''}${i.prewarmed ? ', pre-warmed' : ''}`)));
  fill(byId('instances-body'), ...(rows.length ? rows : [emptyRow('No live instances.', 8)]));
}

/**
 * Cold-start rate and the latency of the requests that started an instance, per time bucket.
 * @param {any[]} invocations
 */
export function renderTimeline(invocations) {
  const started = invocations.filter((r) => r.start !== null && r.trigger !== 'warmup');
  const times = started.map((r) => r.receivedAt);
  const t0 = Math.min(...times), t1 = Math.max(...times);
  const width = Math.max(5000, Math.ceil((t1 - t0) / 30 / 1000) * 1000);
  const n = started.length ? Math.floor((t1 - t0) / width) + 1 : 0;
  const buckets = Array.from({ length: n }, (_, i) => ({ t: t0 + i * width, all: 0, cold: 0, latency: 0 }));
  for (const r of started) {
    const b = buckets[Math.floor((r.receivedAt - t0) / width)];
    b.all++;
    if (STARTED.has(r.start)) { b.cold++; b.latency += r.durationMs; }
  }
  const time = (/** @type {number} */ t) => clock(t);
  fill(byId('chart-cold-rate'), timeSeries(buckets.map((b) => ({ t: b.t, v: b.all ? b.cold / b.all : null })), { format: pct, time, empty: 'No invocations yet.' }));
  fill(byId('chart-first-latency'), timeSeries(buckets.map((b) => ({ t: b.t, v: b.cold ? b.latency / b.cold : null })), { format: (v) => v.toFixed(0), time, empty: 'No cold starts yet.' }));
}

/** The invocation whose detail is open, kept across refreshes. */
let chosen = /** @type {string | null} */ (null);

/** @param {any[]} invocations */
export function renderInvocations(invocations) {
  const rows = invocations.slice(0, 100).map((r) => {
    const tr = el('tr', { 'data-invocation': r.id, class: r.id === chosen ? 'chosen' : null },
      el('td', {}, clock(r.receivedAt)), el('td', {}, r.functionName), el('td', {}, r.version),
      el('td', {}, r.trigger), el('td', { class: 'start' }, r.start ? pill(r.start) : '—'),
      el('td', { class: 'num' }, ms(r.durationMs)), el('td', {}, r.outcome));
    tr.addEventListener('click', () => { void showInvocation(r); });
    return tr;
  });
  fill(byId('invocations-body'), ...(rows.length ? rows : [emptyRow('No invocations yet.', 7)]));
}

/** @param {any} r an invocation record */
async function showInvocation(r) {
  chosen = r.id;
  for (const tr of byId('invocations-body').querySelectorAll('tr')) tr.classList.toggle('chosen', tr.getAttribute('data-invocation') === r.id);
  const why = el('div', { class: 'why', id: 'why' }, el('span', { class: 'muted' }, 'asking why…'));
  const logs = el('pre', { class: 'logs', id: 'invocation-logs' }, '…');
  fill(byId('invocation-detail'),
    el('h3', {}, `${r.functionName}:${r.version} `, el('code', {}, r.id)),
    el('p', {}, `${r.trigger}, start `, r.start ? pill(r.start) : 'none', ` · ${ms(r.durationMs)} in all · init ${ms(r.initMs)} · handler ${ms(r.handlerMs)} · billed ${r.billedMs} ms · ${r.outcome}`),
    r.errorMessage ? el('p', { class: 'error' }, `${r.errorType ?? 'Error'}: ${r.errorMessage}`) : '',
    r.phases.length ? waterfall(r.phases, r.durationMs) : el('p', { class: 'muted' }, 'No phases recorded.'),
    why, el('h3', {}, 'Logs'), logs);
  const [w, l] = await Promise.allSettled([
    api('GET', `/thaw/v1/invocations/${encodeURIComponent(r.id)}/why`),
    api('GET', `/thaw/v1/functions/${fnPath(r.functionName)}/logs?invocation=${encodeURIComponent(r.id)}&limit=200`),
  ]);
  if (chosen !== r.id) return;
  if (w.status === 'fulfilled') {
    const a = w.value.avoidableBy;
    fill(why, el('div', {}, 'why: ', el('span', { class: 'cause' }, w.value.cause)), el('div', { class: 'why-detail' }, w.value.detail),
      a ? el('div', { class: 'avoidable' }, `avoidable by: ${a.text}`) : '');
  } else {
    const e = w.reason;
    fill(why, el('span', { class: 'muted' }, e instanceof ApiError && e.status === 404 && e.code !== 'THAW_E_INVOCATION_NOT_FOUND' ? 'why: not available on this Thaw' : `why: ${e.message}`));
  }
  if (l.status === 'fulfilled') logs.textContent = l.value.lines.map((/** @type {any} */ x) => x.line).join('\n') || '(no log lines)';
  else logs.textContent = `(logs: ${l.reason.message})`;
}

export async function renderDecisions() {
  const { decisions } = await api('GET', '/thaw/v1/decisions?limit=200');
  const rows = [...decisions].reverse().map((/** @type {any} */ d) => el('tr', { 'data-action': d.action },
    el('td', {}, clock(d.wallAt)), el('td', {}, d.fn), el('td', {}, pill(d.action, 'decision')),
    el('td', {}, d.action === 'prewarm' ? `${d.count}${d.spare ? ' spare' : ''}` : el('code', {}, d.instanceId)),
    el('td', {}, d.reason), el('td', {}, d.outcome)));
  fill(byId('decisions-body'), ...(rows.length ? rows : [emptyRow('No policy decisions yet.', 6)]));
}

export async function renderNode() {
  const node = await api('GET', '/thaw/v1/node');
  byId('node-summary').textContent = `${node.sandbox.driver} sandbox${node.sandbox.isolated ? '' : ' (not isolated)'} · ${node.instances} instances · ${mb(node.memory.ramBytes)} RAM`;
}
