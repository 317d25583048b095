// The page's charts, drawn as inline SVG from data (sizes in viewBox units; CSS scales them): a time
// series and an invocation's phase waterfall. The Pareto chart is the simulator's own (src/sim/sweep.ts).
import { ms, svg } from './dom.js';

/**
 * A line chart of one series over time; gaps (null) break the line.
 * @param {{ t: number, v: number | null }[]} points
 * @param {{ format: (v: number) => string, time: (t: number) => string, empty: string }} o
 * @returns {Element}
 */
export function timeSeries(points, o) {
  const W = 520, H = 200, L = 56, R = 12, T = 10, B = 28;
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img' });
  const values = points.map((p) => p.v).filter((v) => v !== null);
  if (!values.length) {
    root.append(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty' }, o.empty));
    return root;
  }
  const t0 = points[0].t, t1 = points[points.length - 1].t;
  const yMax = Math.max(...values) * 1.1 || 1;
  const X = (/** @type {number} */ t) => L + (t1 === t0 ? 0.5 : (t - t0) / (t1 - t0)) * (W - L - R);
  const Y = (/** @type {number} */ v) => T + (1 - v / yMax) * (H - T - B);
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    root.append(svg('line', { x1: L, x2: W - R, y1: Y(v), y2: Y(v), class: 'grid' }));
    root.append(svg('text', { x: L - 6, y: Y(v) + 4, 'text-anchor': 'end' }, o.format(v)));
  }
  root.append(svg('line', { x1: L, x2: W - R, y1: H - B, y2: H - B, class: 'axis' }));
  for (const t of t1 === t0 ? [t0] : [t0, (t0 + t1) / 2, t1]) root.append(svg('text', { x: X(t), y: H - 8, 'text-anchor': 'middle' }, o.time(t)));
  /** @type {string[]} */
  let run = [];
  const flush = () => { if (run.length > 1) root.append(svg('polyline', { points: run.join(' '), class: 'series' })); run = []; };
  for (const p of points) {
    if (p.v === null) { flush(); continue; }
    run.push(`${X(p.t).toFixed(1)},${Y(p.v).toFixed(1)}`);
    const dot = svg('circle', { cx: X(p.t).toFixed(1), cy: Y(p.v).toFixed(1), r: 3, class: 'dot' });
    dot.append(svg('title', {}, `${o.time(p.t)}: ${o.format(p.v)}`));
    root.append(dot);
  }
  flush();
  return root;
}

/**
 * An invocation's phases as a waterfall: one row per phase at its offset from when the request arrived, so
 * overlap shows (the runtime boots while the code is fetched).
 * @param {{ name: string, offsetMs: number, durationMs: number }[]} phases
 * @param {number} totalMs
 * @returns {Element}
 */
export function waterfall(phases, totalMs) {
  const W = 460, L = 70, R = 70, row = 20, T = 4;
  const H = T + phases.length * row + 4;
  const end = Math.max(totalMs, ...phases.map((p) => p.offsetMs + p.durationMs), 0.001);
  const X = (/** @type {number} */ t) => L + (t / end) * (W - L - R);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'waterfall' });
  phases.forEach((p, i) => {
    const y = T + i * row;
    const g = svg('g', { class: 'phase', 'data-phase': p.name });
    g.append(svg('text', { x: L - 6, y: y + 14, 'text-anchor': 'end' }, p.name));
    const bar = svg('rect', { x: X(p.offsetMs).toFixed(1), y: y + 3, width: Math.max(1, X(p.offsetMs + p.durationMs) - X(p.offsetMs)).toFixed(1), height: row - 6, class: `bar phase-${p.name}` });
    bar.append(svg('title', {}, `${p.name}: +${ms(p.offsetMs)}, ${ms(p.durationMs)}`));
    g.append(bar);
    g.append(svg('text', { x: X(p.offsetMs + p.durationMs) + 4, y: y + 14 }, ms(p.durationMs)));
    root.append(g);
  });
  return root;
}
