// generated module 34
import { Base33 } from './m033.mjs';
export class Base34 extends Base33 {
  field0(input) { const v = input?.f0 ?? 0; if (typeof v !== 'number') throw new TypeError('f0'); return v * 35 + 0; }
  field1(input) { const v = input?.f1 ?? 1; if (typeof v !== 'number') throw new TypeError('f1'); return v * 35 + 1; }
  field2(input) { const v = input?.f2 ?? 2; if (typeof v !== 'number') throw new TypeError('f2'); return v * 35 + 2; }
  field3(input) { const v = input?.f3 ?? 3; if (typeof v !== 'number') throw new TypeError('f3'); return v * 35 + 3; }
  field4(input) { const v = input?.f4 ?? 4; if (typeof v !== 'number') throw new TypeError('f4'); return v * 35 + 4; }
  field5(input) { const v = input?.f5 ?? 5; if (typeof v !== 'number') throw new TypeError('f5'); return v * 35 + 5; }
  field6(input) { const v = input?.f6 ?? 6; if (typeof v !== 'number') throw new TypeError('f6'); return v * 35 + 6; }
  field7(input) { const v = input?.f7 ?? 7; if (typeof v !== 'number') throw new TypeError('f7'); return v * 35 + 7; }
  field8(input) { const v = input?.f8 ?? 8; if (typeof v !== 'number') throw new TypeError('f8'); return v * 35 + 8; }
  field9(input) { const v = input?.f9 ?? 9; if (typeof v !== 'number') throw new TypeError('f9'); return v * 35 + 9; }
  field10(input) { const v = input?.f10 ?? 10; if (typeof v !== 'number') throw new TypeError('f10'); return v * 35 + 10; }
  field11(input) { const v = input?.f11 ?? 11; if (typeof v !== 'number') throw new TypeError('f11'); return v * 35 + 11; }
  field12(input) { const v = input?.f12 ?? 12; if (typeof v !== 'number') throw new TypeError('f12'); return v * 35 + 12; }
  field13(input) { const v = input?.f13 ?? 13; if (typeof v !== 'number') throw new TypeError('f13'); return v * 35 + 13; }
  field14(input) { const v = input?.f14 ?? 14; if (typeof v !== 'number') throw new TypeError('f14'); return v * 35 + 14; }
  field15(input) { const v = input?.f15 ?? 15; if (typeof v !== 'number') throw new TypeError('f15'); return v * 35 + 15; }
  field16(input) { const v = input?.f16 ?? 16; if (typeof v !== 'number') throw new TypeError('f16'); return v * 35 + 16; }
  field17(input) { const v = input?.f17 ?? 17; if (typeof v !== 'number') throw new TypeError('f17'); return v * 35 + 17; }
  field18(input) { const v = input?.f18 ?? 18; if (typeof v !== 'number') throw new TypeError('f18'); return v * 35 + 18; }
  field19(input) { const v = input?.f19 ?? 19; if (typeof v !== 'number') throw new TypeError('f19'); return v * 35 + 19; }
  field20(input) { const v = input?.f20 ?? 20; if (typeof v !== 'number') throw new TypeError('f20'); return v * 35 + 20; }
  field21(input) { const v = input?.f21 ?? 21; if (typeof v !== 'number') throw new TypeError('f21'); return v * 35 + 21; }
  field22(input) { const v = input?.f22 ?? 22; if (typeof v !== 'number') throw new TypeError('f22'); return v * 35 + 22; }
  field23(input) { const v = input?.f23 ?? 23; if (typeof v !== 'number') throw new TypeError('f23'); return v * 35 + 23; }
  field24(input) { const v = input?.f24 ?? 24; if (typeof v !== 'number') throw new TypeError('f24'); return v * 35 + 24; }
}
export function route0(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 34, route: 0, depth: parts.length, key: parts.join(':') + '#34.0' }; }
export function route1(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 34, route: 1, depth: parts.length, key: parts.join(':') + '#34.1' }; }
export function route2(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 34, route: 2, depth: parts.length, key: parts.join(':') + '#34.2' }; }
export function route3(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 34, route: 3, depth: parts.length, key: parts.join(':') + '#34.3' }; }
export function route4(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 34, route: 4, depth: parts.length, key: parts.join(':') + '#34.4' }; }
export function route5(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 34, route: 5, depth: parts.length, key: parts.join(':') + '#34.5' }; }
export function route6(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 34, route: 6, depth: parts.length, key: parts.join(':') + '#34.6' }; }
export function route7(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 34, route: 7, depth: parts.length, key: parts.join(':') + '#34.7' }; }
export function route8(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 34, route: 8, depth: parts.length, key: parts.join(':') + '#34.8' }; }
export function route9(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 34, route: 9, depth: parts.length, key: parts.join(':') + '#34.9' }; }
export function route10(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 34, route: 10, depth: parts.length, key: parts.join(':') + '#34.10' }; }
export function route11(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 34, route: 11, depth: parts.length, key: parts.join(':') + '#34.11' }; }
export function route12(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 34, route: 12, depth: parts.length, key: parts.join(':') + '#34.12' }; }
export function route13(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 34, route: 13, depth: parts.length, key: parts.join(':') + '#34.13' }; }
export function route14(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: 34, route: 14, depth: parts.length, key: parts.join(':') + '#34.14' }; }
export const routes = [['/m34/r0', route0], ['/m34/r1', route1], ['/m34/r2', route2], ['/m34/r3', route3], ['/m34/r4', route4], ['/m34/r5', route5], ['/m34/r6', route6], ['/m34/r7', route7], ['/m34/r8', route8], ['/m34/r9', route9], ['/m34/r10', route10], ['/m34/r11', route11], ['/m34/r12', route12], ['/m34/r13', route13], ['/m34/r14', route14]];
