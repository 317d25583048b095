// The seccomp filter every confined instance runs under, as classic BPF for bubblewrap's --seccomp: no
// new user namespaces (the door to most unprivileged kernel exploits: a process that makes one holds every
// capability inside it), no clone3 (its flags cannot be inspected; ENOSYS makes libc fall back to clone),
// no ptrace or cross-process memory access, no kernel keyrings, eBPF, perf events, userfaultfd, io_uring or
// module and kexec loading. Everything else is allowed. Built in memory; imports node built-ins.

type Arch = 'x64' | 'arm64';

/** System call numbers per architecture (asm/unistd_64.h, asm-generic/unistd.h). */
const NR: Record<Arch, Record<string, number>> = {
  x64: {
    clone: 56, unshare: 272, clone3: 435, setns: 308, ptrace: 101, process_vm_readv: 310, process_vm_writev: 311,
    keyctl: 250, add_key: 248, request_key: 249, bpf: 321, perf_event_open: 298, userfaultfd: 323,
    io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427, kexec_load: 246, kexec_file_load: 320,
    init_module: 175, finit_module: 313, delete_module: 176,
  },
  arm64: {
    clone: 220, unshare: 97, clone3: 435, setns: 268, ptrace: 117, process_vm_readv: 270, process_vm_writev: 271,
    keyctl: 219, add_key: 217, request_key: 218, bpf: 280, perf_event_open: 241, userfaultfd: 282,
    io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427, kexec_load: 104, kexec_file_load: 294,
    init_module: 105, finit_module: 273, delete_module: 106,
  },
};
const AUDIT_ARCH: Record<Arch, number> = { x64: 0xc000003e, arm64: 0xc00000b7 };

/** Refused outright with EPERM. */
export const DENIED = ['setns', 'ptrace', 'process_vm_readv', 'process_vm_writev', 'keyctl', 'add_key', 'request_key', 'bpf',
  'perf_event_open', 'userfaultfd', 'io_uring_setup', 'io_uring_enter', 'io_uring_register', 'kexec_load', 'kexec_file_load',
  'init_module', 'finit_module', 'delete_module'] as const;

const CLONE_NEWUSER = 0x10000000;
const EPERM = 1;
const ENOSYS = 38;
const RET_ALLOW = 0x7fff0000;
const RET_ERRNO = 0x00050000;
// Classic BPF opcodes.
const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGE_K = 0x35;
const JSET_K = 0x45;
const RET_K = 0x06;
// struct seccomp_data: int nr; u32 arch; u64 ip; u64 args[6]. args[0]'s low 32 bits on a little-endian machine.
const OFF_NR = 0;
const OFF_ARCH = 4;
const OFF_ARG0_LO = 16;

type Insn = { code: number; jt?: string | number; jf?: string | number; k: number } | { label: string };

/** Assembles instructions with symbolic jump targets into struct sock_filter[] bytes. */
function assemble(prog: Insn[]): Buffer {
  const labels = new Map<string, number>();
  const code: Extract<Insn, { code: number }>[] = [];
  for (const i of prog) {
    if ('label' in i) labels.set(i.label, code.length);
    else code.push(i);
  }
  const out = Buffer.alloc(code.length * 8);
  code.forEach((i, pc) => {
    const rel = (t: string | number | undefined) => {
      if (t === undefined) return 0;
      const off = (typeof t === 'number' ? pc + 1 + t : labels.get(t)!) - (pc + 1);
      if (off < 0 || off > 255) throw new Error(`seccomp: jump to ${t} out of range`);
      return off;
    };
    out.writeUInt16LE(i.code, pc * 8);
    out.writeUInt8(rel(i.jt), pc * 8 + 2);
    out.writeUInt8(rel(i.jf), pc * 8 + 3);
    out.writeUInt32LE(i.k >>> 0, pc * 8 + 4);
  });
  return out;
}

export function seccompArch(): Arch | null {
  return process.arch === 'x64' || process.arch === 'arm64' ? process.arch : null;
}

/** The filter for this machine's architecture, or null where Thaw has no table for it. */
export function seccompFilter(arch: Arch | null = seccompArch()): Buffer | null {
  if (!arch || process.platform !== 'linux') return null;
  const nr = NR[arch];
  const prog: Insn[] = [
    { code: LD_W_ABS, k: OFF_ARCH },
    { code: JEQ_K, k: AUDIT_ARCH[arch], jt: 0, jf: 'enosys' },
    { code: LD_W_ABS, k: OFF_NR },
  ];
  // x32 system calls share the x86-64 audit arch with bit 30 set: none are needed.
  if (arch === 'x64') prog.push({ code: JGE_K, k: 0x40000000, jt: 'enosys', jf: 0 });
  prog.push(
    { code: JEQ_K, k: nr.clone3, jt: 'enosys', jf: 0 },
    { code: JEQ_K, k: nr.clone, jt: 'flags', jf: 0 },
    { code: JEQ_K, k: nr.unshare, jt: 'flags', jf: 0 },
  );
  for (const name of DENIED) prog.push({ code: JEQ_K, k: nr[name], jt: 'eperm', jf: 0 });
  prog.push(
    { code: RET_K, k: RET_ALLOW },
    { label: 'flags' },
    { code: LD_W_ABS, k: OFF_ARG0_LO },
    { code: JSET_K, k: CLONE_NEWUSER, jt: 'eperm', jf: 0 },
    { code: RET_K, k: RET_ALLOW },
    { label: 'eperm' },
    { code: RET_K, k: RET_ERRNO | EPERM },
    { label: 'enosys' },
    { code: RET_K, k: RET_ERRNO | ENOSYS },
  );
  return assemble(prog);
}
