// Parameter sweeps for the Pareto chart: each policy's knob over the range the issue names (fixed TTL
// 5 min … 2 h, hybrid ranges 1–4 h, Greedy-Dual memory budgets, Thaw's range), run on one trace.
import { parsePolicy, type PolicySpec } from '../policies/index.ts';
import { simulate, type SimOptions, type SimResult } from './simulate.ts';
import type { Trace } from './trace.ts';

export interface SweepPoint { readonly family: string; readonly knob: string; readonly result: SimResult }

/** The specs swept per family; Greedy-Dual budgets scale with the trace (fractions of one instance per function). */
export function sweepSpecs(trace: Trace): { family: string; knob: string; spec: PolicySpec }[] {
  const oneEach = trace.functions.reduce((s, f) => s + f.memoryMb, 0);
  const out: { family: string; knob: string; spec: PolicySpec }[] = [];
  for (const ttl of ['5m', '10m', '20m', '30m', '1h', '2h']) out.push({ family: 'fixed', knob: ttl, spec: parsePolicy(`fixed:${ttl}`) });
  for (const r of ['1h', '2h', '3h', '4h']) out.push({ family: 'hybrid', knob: r, spec: parsePolicy(`hybrid:${r}`) });
  for (const f of [0.1, 0.2, 0.4, 0.8]) {
    const g = Math.max(1, Math.round((oneEach * f) / 1024));
    out.push({ family: 'gdsf', knob: `${g}g`, spec: parsePolicy(`gdsf:${g}g`) });
  }
  for (const r of ['1h', '2h', '3h', '4h']) out.push({ family: 'thaw', knob: r, spec: parsePolicy(`thaw:${r}`) });
  return out;
}

export function sweep(trace: Trace, base: Omit<SimOptions, 'policy'>, onStep?: (i: number, n: number, label: string) => void): SweepPoint[] {
  const specs = sweepSpecs(trace);
  return specs.map((s, i) => {
    onStep?.(i, specs.length, `${s.family} ${s.knob}`);
    return { family: s.family, knob: s.knob, result: simulate(trace, { ...base, policy: s.spec }) };
  });
}

const COLORS: Record<string, string> = { fixed: '#888888', hybrid: '#1f77b4', gdsf: '#ff7f0e', thaw: '#d62728' };

/** Two panels, cold-start rate (75th percentile over functions; overall) against wasted memory. */
export function paretoSvg(points: readonly SweepPoint[], title: string): string {
  const W = 1010, H = 420, panelW = 440, panelH = 300, top = 60, lefts = [60, 540];
  // Idle RAM in millions of GB·s for a real trace's day, in thousands or units for a small upload's.
  const most = Math.max(...points.map((p) => p.result.wastedMemoryGBs));
  const [unit, unitName] = most >= 1e6 ? [1e6, 'million GB·s'] : most >= 1e3 ? [1e3, 'thousand GB·s'] : [1, 'GB·s'];
  const xs = points.map((p) => p.result.wastedMemoryGBs / unit);
  const xMax = Math.max(...xs) * 1.08 || 1;
  const panels = [
    { label: '75th-percentile function cold-start rate', get: (r: SimResult) => r.p75FunctionColdStartRate },
    { label: 'overall cold-start rate', get: (r: SimResult) => r.coldStartRate },
  ];
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">\n<rect width="100%" height="100%" fill="white"/>\n<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(title)}</text>\n`;
  panels.forEach((panel, k) => {
    const left = lefts[k];
    const yMax = Math.max(0.05, ...points.map((p) => panel.get(p.result))) * 1.1;
    const X = (v: number) => left + (v / xMax) * panelW;
    const Y = (v: number) => top + panelH - (v / yMax) * panelH;
    svg += `<rect x="${left}" y="${top}" width="${panelW}" height="${panelH}" fill="none" stroke="#333"/>\n`;
    for (let t = 0; t <= 4; t++) {
      const xv = (xMax * t) / 4, yv = (yMax * t) / 4;
      svg += `<text x="${X(xv)}" y="${top + panelH + 16}" text-anchor="middle">${xv.toFixed(1)}</text>`;
      svg += `<text x="${left - 6}" y="${Y(yv) + 4}" text-anchor="end">${yv.toFixed(2)}</text>`;
      svg += `<line x1="${left}" x2="${left + panelW}" y1="${Y(yv)}" y2="${Y(yv)}" stroke="#eee"/>\n`;
    }
    svg += `<text x="${left + panelW / 2}" y="${top + panelH + 36}" text-anchor="middle">idle RAM (${unitName}; a paged instance at its RAM fraction)</text>\n`;
    svg += `<text x="${left + panelW / 2}" y="${top - 8}" text-anchor="middle">${panel.label} (lower left is better)</text>\n`;
    for (const family of Object.keys(COLORS)) {
      const fam = points.filter((p) => p.family === family).sort((a, b) => a.result.wastedMemoryGBs - b.result.wastedMemoryGBs);
      if (!fam.length) continue;
      svg += `<polyline fill="none" stroke="${COLORS[family]}" stroke-width="2" points="${fam.map((p) => `${X(p.result.wastedMemoryGBs / unit).toFixed(1)},${Y(panel.get(p.result)).toFixed(1)}`).join(' ')}"/>\n`;
      for (const p of fam) {
        const cx = X(p.result.wastedMemoryGBs / unit), cy = Y(panel.get(p.result));
        svg += `<circle cx="${cx.toFixed(1)}" cy="${cy.toFixed(1)}" r="4" fill="${COLORS[family]}"><title>${family} ${p.knob}: ${panel.get(p.result)} at ${p.result.wastedMemoryGBs} GB·s</title></circle>`;
        svg += `<text x="${(cx + 5).toFixed(1)}" y="${(cy - 5).toFixed(1)}" font-size="10" fill="${COLORS[family]}">${esc(p.knob)}</text>\n`;
      }
    }
  });
  Object.entries(COLORS).forEach(([family, color], i) => {
    svg += `<rect x="${60 + i * 120}" y="${H - 22}" width="12" height="12" fill="${color}"/><text x="${78 + i * 120}" y="${H - 12}">${family === 'gdsf' ? 'greedy-dual' : family}</text>\n`;
  });
  return svg + '</svg>\n';
}
