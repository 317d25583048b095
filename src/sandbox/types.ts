// The sandbox driver interface, owned by the agent: a driver creates one isolation unit per instance.
// Every driver (process now; bwrap namespaces/cgroups and microVMs later) passes sandbox.case.ts.
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
  /** Paths the instance must be able to read (code, runtime files); a confining driver mounts them. */
  readonly readPaths: readonly string[];
}

export interface SandboxExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Set when the platform ended it on purpose (the reason given to kill()); null means it died by itself. */
  readonly killReason: string | null;
}

/** Structured messages to and from the runtime inside (the runtime's protocol decides their shape). */
export interface SandboxChannel {
  send(message: unknown): boolean;
  onMessage(listener: (message: unknown) => void): void;
}

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
  /** Resident memory of the unit's main process now, in bytes (null where unknown). */
  rssBytes(): number | null;
}

export interface SandboxDriver {
  readonly name: string;
  /** Resolves when the unit's process exists; rejects with THAW_E_SANDBOX_START_FAILED. */
  create(spec: SandboxSpec, signal?: AbortSignal): Promise<Sandbox>;
}
