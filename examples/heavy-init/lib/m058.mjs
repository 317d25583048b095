// generated module 58
import { Base57 } from './m057.mjs';
export class Base58 extends Base57 {
  field0(input) { const v = input?.f0 ?? 0; if (typeof v !== 'number') throw new TypeError('f0'); return v * 59 + 0; }
  field1(input) { const v = input?.f1 ?? 1; if (typeof v !== 'number') throw new TypeError('f1'); return v * 59 + 1; }
  field2(input) { const v = input?.f2 ?? 2; if (typeof v !== 'number') throw new TypeError('f2'); return v * 59 + 2; }
  field3(input) { const v = input?.f3 ?? 3; if (typeof v !== 'number') throw new TypeError('f3'); return v * 59 + 3; }
  field4(input) { const v = input?.f4 ?? 4; if (typeof v !== 'number') throw new TypeError('f4'); return v * 59 + 4; }
  field5(input) { const v = input?.f5 ?? 5; if (typeof v !== 'number') throw new TypeError('f5'); return v * 59 + 5; }
  field6(input) { const v = input?.f6 ?? 6; if (typeof v !== 'number') throw new TypeError('f6'); return v * 59 + 6; }
  field7(input) { const v = input?.f7 ?? 7; if (typeof v !== 'number') throw new TypeError('f7'); return v * 59 + 7; }
  field8(input) { const v = input?.f8 ?? 8; if (typeof v !== 'number') throw new TypeError('f8'); return v * 59 + 8; }
  field9(input) { const v = input?.f9 ?? 9; if (typeof v !== 'number') throw new TypeError('f9'); return v * 59 + 9; }
  field10(input) { const v = input?.f10 ?? 10; if (typeof v !== 'number') throw new TypeError('f10'); return v * 59 + 10; }
  field11(input) { const v = input?.f11 ?? 11; if (typeof v !== 'number') throw new TypeError('f11'); return v * 59 + 11; }
  field12(input) { const v = input?.f12 ?? 12; if (typeof v !== 'number') throw new TypeError('f12'); return v * 59 + 12; }
  field13(input) { const v = input?.f13 ?? 13; if (typeof v !== 'number') throw new TypeError('f13'); return v * 59 + 13; }
  field14(input) { const v = input?.f14 ?? 14; if (typeof v !== 'number') throw new TypeError('f14'); return v * 59 + 14; }
  field15(input) { const v = input?.f15 ?? 15; if (typeof v !== 'number') throw new TypeError('f15'); return v * 59 + 15; }
  field16(input) { const v = input?.f16 ?? 16; if (typeof v !== 'number') throw new TypeError('f16'); return v * 59 + 16; }
  field17(input) { const v = input?.f17 ?? 17; if (typeof v !== 'number') throw new TypeError('f17'); return v * 59 + 17; }
  field18(input) { const v = input?.f18 ?? 18; if (typeof v !== 'number') throw new TypeError('f18'); return v * 59 + 18; }
  field19(input) { const v = input?.f19 ?? 19; if (typeof v !== 'number') throw new TypeError('f19'); return v * 59 + 19; }
  field20(input) { const v = input?.f20 ?? 20; if (typeof v !== 'number') throw new TypeError('f20'); return v * 59 + 20; }
  field21(input) { const v = input?.f21 ?? 21; if (typeof v !== 'number') throw new TypeError('f21'); return v * 59 + 21; }
  field22(input) { const v = input?.f22 ?? 22; if (typeof v !== 'number') throw new TypeError('f22'); return v * 59 + 22; }
  field23(input) { const v = input?.f23 ?? 23; if (typeof v !== 'number') throw new TypeError('f23'); return v * 59 + 23; }
  field24(input) { const v = input?.f24 ?? 24; if (typeof v !== 'number') throw new TypeError('f24'); return v * 59 + 24; }
}
export function route0(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 58, route: 0, depth: parts.length, key: parts.join(':') + '#58.0' }; }
export function route1(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 58, route: 1, depth: parts.length, key: parts.join(':') + '#58.1' }; }
export function route2(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 58, route: 2, depth: parts.length, key: parts.join(':') + '#58.2' }; }
export function route3(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 58, route: 3, depth: parts.length, key: parts.join(':') + '#58.3' }; }
export function route4(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 58, route: 4, depth: parts.length, key: parts.join(':') + '#58.4' }; }
export function route5(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 58, route: 5, depth: parts.length, key: parts.join(':') + '#58.5' }; }
export function route6(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 58, route: 6, depth: parts.length, key: parts.join(':') + '#58.6' }; }
export function route7(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 58, route: 7, depth: parts.length, key: parts.join(':') + '#58.7' }; }
export function route8(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 58, route: 8, depth: parts.length, key: parts.join(':') + '#58.8' }; }
export function route9(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 58, route: 9, depth: parts.length, key: parts.join(':') + '#58.9' }; }
export function route10(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 58, route: 10, depth: parts.length, key: parts.join(':') + '#58.10' }; }
export function route11(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 58, route: 11, depth: parts.length, key: parts.join(':') + '#58.11' }; }
export function route12(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 58, route: 12, depth: parts.length, key: parts.join(':') + '#58.12' }; }
export function route13(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 58, route: 13, depth: parts.length, key: parts.join(':') + '#58.13' }; }
export function route14(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 58, route: 14, depth: parts.length, key: parts.join(':') + '#58.14' }; }
export const routes = [['/m58/r0', route0], ['/m58/r1', route1], ['/m58/r2', route2], ['/m58/r3', route3], ['/m58/r4', route4], ['/m58/r5', route5], ['/m58/r6', route6], ['/m58/r7', route7], ['/m58/r8', route8], ['/m58/r9', route9], ['/m58/r10', route10], ['/m58/r11', route11], ['/m58/r12', route12], ['/m58/r13', route13], ['/m58/r14', route14]];
