// The simulator panel: the chosen CSV files go to POST /thaw/v1/sim as text (the invocations file, and the
// _run and _mem files told apart by their names or headers); the reply's Pareto chart (drawn by the
// simulator, src/sim/sweep.ts) is parsed as SVG (never as HTML) and its points listed in a table.
import { api } from './api.js';
import { byId, el, fill, pct } from './dom.js';

/**
 * Which part of a trace a file is: by its header line, else by its name.
 * @param {string} name
 * @param {string} text
 * @returns {'invocations' | 'durations' | 'memory'}
 */
export function traceRole(name, text) {
  const header = text.slice(0, text.indexOf('\n') >>> 0);
  if (/percentile_Average_/.test(header) || /_run\.csv$/i.test(name)) return 'durations';
  if (/AverageAllocatedMb/.test(header) || /_mem\.csv$/i.test(name)) return 'memory';
  return 'invocations';
}

export function setUpSimulator() {
  const form = /** @type {HTMLFormElement} */ (byId('sim-form'));
  const button = /** @type {HTMLButtonElement} */ (byId('sim-run'));
  const status = byId('sim-status');
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void (async () => {
      const files = [...(/** @type {HTMLInputElement} */ (byId('sim-files')).files ?? [])];
      /** @type {Record<string, string>} */
      const body = { model: /** @type {HTMLSelectElement} */ (byId('sim-model')).value };
      for (const f of files) {
        const text = await f.text();
        body[traceRole(f.name, text)] = text;
        if (traceRole(f.name, text) === 'invocations') body.name = f.name.replace(/(_inv)?\.csv$/i, '');
      }
      button.disabled = true;
      status.textContent = `Simulating ${files.map((f) => f.name).join(', ')}…`;
      try {
        const r = await api('POST', '/thaw/v1/sim', body);
        showResult(r);
        status.textContent = `${r.trace.name}: ${r.trace.functions} functions, ${r.trace.minutes} minutes, ${r.trace.invocations} invocations; ${r.points.length} policy settings swept.`;
      } catch (err) {
        fill(byId('sim-chart'));
        byId('sim-table').hidden = true;
        status.textContent = `The simulation failed: ${/** @type {Error} */ (err).message}`;
      } finally {
        button.disabled = false;
      }
    })();
  });
}

/** @param {any} r the reply of POST /thaw/v1/sim */
function showResult(r) {
  const doc = new DOMParser().parseFromString(r.svg, 'image/svg+xml');
  const chart = doc.documentElement;
  if (chart.nodeName !== 'svg') throw new Error('the simulator sent no chart');
  fill(byId('sim-chart'), document.importNode(chart, true));
  fill(byId('sim-body'), ...r.points.map((/** @type {any} */ p) => el('tr', { 'data-family': p.family },
    el('td', {}, p.policy), el('td', { class: 'num' }, p.invocations), el('td', { class: 'num' }, p.coldStarts),
    el('td', { class: 'num' }, pct(p.coldStartRate)), el('td', { class: 'num' }, pct(p.p75FunctionColdStartRate)),
    el('td', { class: 'num' }, p.wastedMemoryGBs.toLocaleString('en-US')), el('td', { class: 'num' }, p.swapGBs.toLocaleString('en-US')))));
  byId('sim-table').hidden = false;
}
