#!/bin/sh
# Entry point of the agent container: readies cgroup v2 for Thaw's per-instance groups, then runs `thaw "$@"`.
# In a container with its own cgroup namespace, /sys/fs/cgroup is the container's group and the container's
# processes sit in it; cgroup v2 lets a group hand controllers (memory, pids, cpu) to children only when it
# has no processes of its own, so Thaw's `+memory` in cgroup.subtree_control would fail with EBUSY. As the
# docker:dind entry point does, move this container's processes into a leaf group first, then delegate every
# controller the group has. cgroup v1 hosts and groups already delegated are left alone.
set -eu
cg=/sys/fs/cgroup
if [ -f "$cg/cgroup.controllers" ] && [ -w "$cg/cgroup.subtree_control" ] && [ -n "$(cat "$cg/cgroup.procs")" ]; then
  mkdir -p "$cg/thaw-agent-init"
  # A process may exit between the read and the move; that one needs no moving.
  while read -r pid; do echo "$pid" > "$cg/thaw-agent-init/cgroup.procs" 2>/dev/null || true; done < "$cg/cgroup.procs"
  for c in $(cat "$cg/cgroup.controllers"); do echo "+$c" > "$cg/cgroup.subtree_control" 2>/dev/null || echo "agent-entrypoint: cannot delegate cgroup controller $c" >&2; done
fi
exec thaw "$@"
