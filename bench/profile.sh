#!/usr/bin/env bash
# Instruction-exact profiles of the hot paths (valgrind's callgrind; deterministic,
# unaffected by machine load). Run scripts/bench (or --quick) first: it builds
# target/bench/bin/profile. Prints, per operation, instructions (Ir), L1 data misses
# and last-level misses (LL: 16 MiB simulated) per call or per event of the
# functions that matter. Raw profiles are kept in target/bench/callgrind/.
#
#   bench/profile.sh            decoders, dispatcher paths, scale at 1k and 1M watches (~10 min)
#   bench/profile.sh quick      decoders and dispatcher paths only (~1 min)
set -euo pipefail
cd "$(dirname "$0")/.."
prof=$PWD/target/bench/bin/profile
[ -x "$prof" ] || prof=$PWD/target/bench/quick/bin/profile
out=target/bench/callgrind
[ -x "$prof" ] || { echo "run scripts/bench --quick first" >&2; exit 2; }
mkdir -p "$out"
cg() { valgrind --tool=callgrind --cache-sim=yes --LL=16777216,16,64 "$@" >/dev/null 2>&1; }

# Per-call/per-event inclusive costs of the named functions (suffix match).
summary() { # FILE N FUNCTION...
    python3 - "$@" <<'EOF'
import re, subprocess, sys
path, n, names = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
text = subprocess.run(["callgrind_annotate", "--inclusive=yes", path], capture_output=True, text=True).stdout
events, seen = None, set()
for line in text.splitlines():
    if line.startswith("Events shown:"):
        events = line.split(":")[1].split()
    cols = re.match(r"^\s*((?:(?:[\d,]+|\.)(?: \([^)]*\))?\s+)+)(\S.*?)(?: \[.*\])?$", line)
    if not cols or not events:
        continue  # the first (largest) line of a function is its inclusive total
    hit = next((x for x in names if (cols.group(2) + " ").endswith(x + " ")), None)
    if not hit or hit in seen:
        continue
    seen.add(hit)
    vals = [0.0 if v == "." else float(v.replace(",", "")) for v in re.findall(r"([\d,]+|\.)(?: \([^)]*\))?\s+", cols.group(1))]
    d = dict(zip(events, vals))
    print("  %-34s Ir %6.0f  D1 misses %5.1f  LL misses %5.2f" % (hit, d["Ir"] / n, (d.get("D1mr", 0) + d.get("D1mw", 0)) / n,
                                                                 (d.get("DLmr", 0) + d.get("DLmw", 0)) / n))
EOF
}

n=100000
for op in stat_decode c_stat_decode event_decode c_event_naive c_event_utf8 props c_props format snprintf; do
    cg --callgrind-out-file="$out/$op" "$prof" $op $n
    echo "$op (per call):"
    summary "$out/$op" $n zk_stat_decode c_stat_decode zk_watched_event_decode c_event_naive c_event_utf8 \
        from_utf8 zk_stat_properties_get c_stat_props zk_stat_format snprintf
done
hot=(zk_dispatcher_event zk_watch_add zk_dispatcher::event zk_dispatcher::watch_add match_event path::validate
     from_utf8 push_one spec_new_impl do_reserve_and_handle malloc.c:malloc malloc.c:free
     zk_dispatcher::fire "HashMap<K,V,S,A>::remove" "Arc<T,A>::drop_slow" hash_one next_batch)
for op in persistent recursive oneshot; do
    cg --separate-threads=yes --callgrind-out-file="$out/$op" "$prof" $op $n
    echo "$op (per event; feeding thread):"
    summary "$out/$op-01" $n "${hot[@]}"
    echo "$op (per event; dispatch thread; spinning while idle included):"
    summary "$out/$op-02" $n "${hot[@]}"
done
[ "${1:-}" = quick ] && exit 0
for kind in recursive oneshot; do
    for w in 1000 1000000; do
        cg --callgrind-out-file="$out/scale_$kind.$w" "$prof" scale_$kind $w $n
        echo "scale_$kind with $w watches (per event, event phase only, both threads):"
        summary "$out/scale_$kind.$w.1" $n "${hot[@]}"
    done
done
