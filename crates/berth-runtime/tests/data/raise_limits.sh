# Run inside a container with --memory 32m --pids-limit 50: try to raise both limits from inside
# (cgroup v1 controllers, or the container's own cgroup v2 directory) and to write to the cgroup
# tree's top, then print what happened and what the limits are. Shared by berth-runtime's and
# berth-daemon's confinement tests.
if [ -e /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
  m=/sys/fs/cgroup/memory/memory.limit_in_bytes; p=/sys/fs/cgroup/pids/pids.max
else
  cg=$(sed -n 's/^0:://p' /proc/self/cgroup)
  m=/sys/fs/cgroup$cg/memory.max; p=/sys/fs/cgroup$cg/pids.max
fi
echo 1073741824 > $m; echo "mem_rc=$?"
echo max > $p; echo "pids_rc=$?"
touch /sys/fs/cgroup/berth-probe; echo "tmpfs_rc=$?"
echo "mem=$(cat $m)"
echo "pids=$(cat $p)"
