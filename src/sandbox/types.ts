// The sandbox driver interface, owned by the agent: a driver creates one isolation unit per instance.
// Every driver (process, namespaces, memory; microVMs later) passes the conformance suite sandbox.case.ts.
import type { Readable } from 'node:stream';

export interface SandboxSpec {
  readonly id: string;
  /** The runtime's executable and arguments, chosen by the runtime, not the driver. */
  readonly command: string;
  readonly args: readonly string[];
  /** The complete environment: nothing of the platform's own environment leaks in. */
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  readonly memoryBytes: number;
  /** Size of the private writable /tmp (Lambda's EphemeralStorage). */
  readonly tmpBytes: number;
  /** Directories the unit may write, bound read-write at the same paths (a snapshot build's output). */
  readonly writePaths?: readonly string[];
  /** Code attached before the process starts (a snapshot build runs the function's init at once). */
  readonly code?: CodeView;
  /** Whether the unit gets the structured message channel (default true; `node --build-snapshot` must not have one). */
  readonly channel?: boolean;
  /** Files the runtime must read before any code is attached (its binary, bootstrap, snapshot); a confining driver binds them read-only at the same paths. */
  readonly readPaths: readonly string[];
  /**
   * Platform directories a confining driver binds read-only at another path inside (`inside`, e.g. the
   * egress proxies' sockets at /run/thaw/egress), so that no host path is revealed. Non-confining drivers ignore them.
   */
  readonly binds?: readonly { readonly host: string; readonly inside: string }[];
  /** A network namespace (file) to join instead of a new loopback-only one: a private network's. Confining drivers only. */
  readonly netns?: string;
}

/** A function's code on the host, and the V8 compile cache its instances share. */
export interface CodeView {
  readonly codeDir: string;
  readonly compileCacheDir: string | null;
  /**
   * The function's layers merged into one tree (read-only), what Lambda has at /opt; absent or null: none.
   * Inside a confining driver it is at /opt (an empty /opt without layers); elsewhere where it lies.
   */
  readonly optDir?: string | null;
}

export interface SandboxExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Set when the platform ended it on purpose (the reason given to kill()); null means it died by itself. */
  readonly killReason: string | null;
  /** The unit hit its memory limit and the kernel's OOM killer acted in it. */
  readonly oomKilled: boolean;
}

/** Structured messages to and from the runtime inside (the runtime's protocol decides their shape). */
export interface SandboxChannel {
  send(message: unknown): boolean;
  onMessage(listener: (message: unknown) => void): void;
}

/** What a page-out did: the unit's private (anonymous) resident memory before and after, and what is in swap. */
export interface PageOut { beforeBytes: number; residentBytes: number; swappedBytes: number }

export interface Sandbox extends AsyncDisposable {
  readonly id: string;
  readonly pid: number;
  readonly channel: SandboxChannel;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Resolves once, when the unit is gone, whoever ended it. */
  readonly exited: Promise<SandboxExit>;
  readonly hasExited: boolean;
  /** Ends the unit at once (SIGKILL to its whole process group); idempotent. */
  kill(reason: string): void;
  /** Stops every process of the unit from running (no CPU; memory kept); `thaw` resumes them. */
  freeze(): Promise<void>;
  /** Resumes a frozen unit; false when it is dead (killed while frozen), even if its exit is not seen yet. */
  thaw(): Promise<boolean>;
  /**
   * Pushes a frozen unit's memory out to swap (the paged tier); its pages come back on demand after a
   * thaw. Resolves with what it did, or null where the driver cannot (no memory cgroup, no swap on the host).
   */
  pageOut(): Promise<PageOut | null>;
  /** Resident memory of the unit now, in bytes: of its cgroup where it has one, else of its main process (null where unknown). */
  rssBytes(): number | null;
  /** The most memory the unit has used since it started, in bytes (Lambda's Max Memory Used; null where unknown). */
  peakMemoryBytes(): number | null;
  /**
   * Makes a function's code (read-only) and its compile cache (writable) appear inside the unit, once, and
   * resolves with their paths as the runtime inside sees them. A pooled unit gets its code this way.
   */
  attachCode(view: CodeView): Promise<CodeView>;
}

/** What a driver confines, for `thaw up`'s banner and /thaw/v1/node. */
export interface SandboxReport {
  readonly driver: string;
  /** Instances cannot see or touch the host, each other or the platform. */
  readonly isolated: boolean;
  /** What is in force, one phrase each (e.g. "memory limit (cgroup v1)"). */
  readonly enforced: readonly string[];
  /** What is not, with the reason or the command that turns it on. */
  readonly notEnforced: readonly string[];
  /** Units of an earlier run (killed without cleaning up) that start() found and removed. */
  readonly leftoversRemoved: number;
}

export interface SandboxDriver {
  readonly name: string;
  /** Where attached code appears inside this driver's units (what attachCode resolves with). */
  insideView(view: CodeView): CodeView;
  /** Prepares the host (removing what an earlier run left); called once before the first create. */
  start(): Promise<void>;
  /** Resolves when the unit's process exists; rejects with THAW_E_SANDBOX_START_FAILED. */
  create(spec: SandboxSpec, signal?: AbortSignal): Promise<Sandbox>;
  report(): SandboxReport;
  /** Releases what start() set up; every unit must be gone first. Idempotent. */
  close(): Promise<void>;
}
