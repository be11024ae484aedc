#!/usr/bin/env bash
# Stop the daemons tests/cluster/slurm_up.sh started, and nothing else.
#
#   tests/cluster/slurm_down.sh                  # all daemons slurm_up.sh recorded
#   tests/cluster/slurm_down.sh slurmd slurmctld # only these (tests/test_cluster.py passes the
#                                                # ones its own slurm_up.sh call started)
#
# Reads $SLURM_TEST_DIR/daemons.pids ("name pid" lines written by slurm_up.sh), and for each line
# whose process is still alive AND still has that name (guards against PID reuse) sends SIGTERM,
# waits, then SIGKILL. Daemons slurm_up.sh found already running were never recorded and are left
# alone; so is every other process. No pkill/killall. Idempotent: with nothing recorded it exits 0.
# Jobs still queued or running on a slurmctld we started are cancelled first so that no
# slurmstepd outlives its slurmd. Config files and the scratch dir are kept (cheap restart).
set -euo pipefail

DIR=${SLURM_TEST_DIR:-/tmp/modelfp-slurm}
STATE=$DIR/daemons.pids

die() { echo "slurm_down: ERROR: $*" >&2; exit 1; }
say() { echo "slurm_down: $*"; }

wanted=" ${*:-slurmd slurmctld munged} "
for name in $wanted; do
    case "$name" in slurmd|slurmctld|munged) ;; *) die "unknown daemon '$name' (slurmd, slurmctld, munged)";; esac
done

if [ ! -s "$STATE" ]; then
    say "no daemons recorded in $STATE; nothing to stop"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || die "must run as root to stop root/munge daemons"

ours() {  # ours NAME PID: alive and still the process we started
    kill -0 "$2" 2>/dev/null && [ "$(cat /proc/"$2"/comm 2>/dev/null)" = "$1" ]
}

if [[ "$wanted" == *" slurmctld "* ]] && grep -q '^slurmctld ' "$STATE" && command -v squeue >/dev/null 2>&1; then
    jobs=$(squeue -h -t PENDING,RUNNING,SUSPENDED,COMPLETING -o %A 2>/dev/null | sort -u | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
        say "cancelling jobs still on our slurmctld: $jobs"
        # shellcheck disable=SC2086
        scancel $jobs 2>/dev/null || true
        for _ in $(seq 20); do
            [ -z "$(squeue -h -t RUNNING,COMPLETING -o %A 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
fi

failed=()
# stop in reverse dependency order: slurmd, slurmctld, munged
for name in slurmd slurmctld munged; do
    [[ "$wanted" == *" $name "* ]] || continue
    while read -r n pid; do
        [ "$n" = "$name" ] || continue
        if ! ours "$name" "$pid"; then
            say "$name (pid $pid) is already gone"
            continue
        fi
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do ours "$name" "$pid" || break; sleep 0.1; done
        if ours "$name" "$pid"; then
            say "$name (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
        fi
        if ours "$name" "$pid"; then failed+=("$name:$pid"); else say "stopped $name (pid $pid)"; fi
    done <"$STATE"
done

[ ${#failed[@]} -eq 0 ] || die "could not stop ${failed[*]} (still listed in $STATE)"
# forget the stopped daemons; keep lines of daemons not asked for
awk -v w="$wanted" 'index(w, " " $1 " ") == 0' "$STATE" >"$STATE.tmp" && mv "$STATE.tmp" "$STATE"
[ -s "$STATE" ] || rm -f "$STATE"
say "done"
