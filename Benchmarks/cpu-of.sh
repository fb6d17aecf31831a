#!/usr/bin/env bash
# cpu-of.sh COMMAND...  -- runs COMMAND and, when it ends, appends the CPU seconds it used
# (user + system, its threads included) to $CPU_LOG (default /tmp/mediaqueue-cpu.log).
# For benchmark harnesses that start the service themselves (SUT_CMD of ../shared/bench): the
# figure is read from /proc while the process lives, since a harness may end this wrapper with
# the service's own signal.
set -u
log=${CPU_LOG:-/tmp/mediaqueue-cpu.log}
"$@" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null' TERM INT
ticks_per_second=$(getconf CLK_TCK)
last=0
while kill -0 "$pid" 2>/dev/null; do
    # Fields 14 and 15 of /proc/PID/stat: user and system time in clock ticks.
    ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) && [ -n "$ticks" ] && last=$ticks
    [ "$last" -gt 0 ] && echo "cpu_s=$(awk -v t="$last" -v h="$ticks_per_second" 'BEGIN{printf "%.2f", t/h}')" > "$log.$pid"
    sleep 0.2
done
wait "$pid" 2>/dev/null
cat "$log.$pid" >> "$log" 2>/dev/null && rm -f "$log.$pid"
