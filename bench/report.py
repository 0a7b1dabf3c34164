"""Turns the benchmark outputs ("key v1,v2,..." lines) into results.md and dispatch_scale.svg.

Usage: python report.py RAW_DIR OUT.md OUT.svg
Every *.txt in RAW_DIR is read. Figures are medians over the repetitions; a ratio
between two figures measured in the same interleaved run is the median of the
per-repetition ratios. Targets are reported, never asserted.
"""
import glob
import math
import os
import platform
import statistics
import sys
import time

raw_dir, out_md, out_svg = sys.argv[1:4]
data = {}
for path in sorted(glob.glob(os.path.join(raw_dir, "*.txt"))):
    for line in open(path):
        key, _, rest = line.strip().partition(" ")
        if not key or key.startswith("#"):
            continue
        try:
            data[key] = [float(v) for v in rest.split(",")]
        except ValueError:
            data[key] = rest


def med(key):
    v = data.get(key)
    return statistics.median(v) if isinstance(v, list) else None


def paired(a, b):
    """Median over repetitions of a[i] / b[i] (both measured in the same interleaved loop)."""
    x, y = data.get(a), data.get(b)
    if not isinstance(x, list) or not isinstance(y, list) or len(x) != len(y):
        return None if med(a) is None or med(b) is None else med(a) / med(b)
    return statistics.median(p / q for p, q in zip(x, y))


def spread(a, b):
    """The interquartile range of the per-repetition ratios a[i] / b[i], as text."""
    x, y = data.get(a), data.get(b)
    if not isinstance(x, list) or not isinstance(y, list) or len(x) != len(y) or len(x) < 4:
        return ""
    q = statistics.quantiles([p / r for p, r in zip(x, y)], n=4)
    return " (IQR %.2f–%.2f)" % (q[0], q[2])


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if unit == "eps":
        return "%.2f M/s" % (v / 1e6) if v >= 1e5 else "%.0f k/s" % (v / 1e3)
    digits = 2 if abs(v) < 10 else 1 if abs(v) < 100 else 0
    return "%.*f%s" % (digits, v, unit)


def check(value, ok):
    return "n/a" if value is None else ("PASS" if ok(value) else "FAIL")


rows = []  # (figure, value, baseline, baseline value, ratio, target, result)


def row_ratio(fig, key, base, base_key, target="info", limit=None, unit=" ns"):
    """zk / baseline time ratio, target: at most `limit` (None: information only)."""
    r = paired(key, base_key)
    res = "info" if limit is None else check(r, lambda x: x <= limit)
    rows.append((fig, fmt(med(key), unit), base, fmt(med(base_key), unit),
                 fmt(r, "×") + spread(key, base_key), target, res))


def row_speedup(fig, key, base, base_key, target=None, limit=None, unit=" ns", higher_is_better=False):
    """How many times faster zk is than the baseline."""
    r = paired(base_key, key) if not higher_is_better else paired(key, base_key)
    if base_key.startswith("kazoo.") or key.startswith("kazoo."):  # other process: ratio of medians
        a, b = med(key), med(base_key)
        r = None if a is None or b is None else (a / b if higher_is_better else b / a)
    res = "info" if limit is None else check(r, lambda x: x >= limit)
    iqr = "" if higher_is_better or "kazoo." in base_key + key else spread(base_key, key)
    rows.append((fig, fmt(med(key), unit), base, fmt(med(base_key), unit),
                 fmt(r, "× faster" if not higher_is_better else "×") + iqr, target or "info", res))


# ---- decoding and formatting (ns per call)
# bench/micro.c runs twice: statically against libzk_states.a (keys prefixed "static.": direct
# calls) and against libzk_states.so (keys as is: calls through the PLT into the shared library).
# Each build measures its own interleaved C baselines, so every ratio pairs repetitions of one
# run. The targets are judged on the .a build, where the library is called as its baselines are
# (direct calls to functions of the program; the C client's decode is only in libzookeeper_mt.a).
# The .so rows add what calling any shared library costs a program; they are given against the
# same baselines compiled into a shared library (bench/baselines_so.c: "C in a .so", called
# like libzk_states.so) and against the baselines of the program, for information. kazoo rows
# (another process) are given for the .so only.
SO_C = ", in a shared library"


def compare(fig, key, base, base_key, target, limit, speedup=False, so_base_key=None):
    """The figure's rows: `.a` against the program's baseline (judged), then `.so` against
    the baseline in a shared library and against the program's baseline (information)."""
    row = row_speedup if speedup else row_ratio
    row(fig + ", `.a`", "static." + key, base, "static." + base_key, target, limit)
    if so_base_key:
        row(fig + ", `.so`", key, base + SO_C, so_base_key, "info")
    row(fig + ", `.so`", key, base + ", in the program", base_key, "info")


compare("call overhead: `zk_states_abi_version()`", "call.zk", "C function returning a constant", "call.c",
        "info", None, so_base_key="call.c_so")
compare("`zk_stat_decode`", "stat_decode.zk", "hand-written C `be64toh` decode", "stat_decode.c",
        "≤ 1.3×", 1.3, so_base_key="stat_decode.c_so")
compare("`zk_stat_decode`", "stat_decode.zk",
        "C client `create_buffer_iarchive` + `deserialize_Stat` + `close_buffer_iarchive`", "stat_decode.zkc",
        "≥ 15× faster", 15, speedup=True, so_base_key="stat_decode.zkc_so")
row_speedup("`zk_stat_decode` + `created` + `owner_session_id`, `.so`", "stat_kazoo_work.zk",
            "kazoo `unpack_from` + `ZnodeStat._make` + `.created` + `.owner_session_id`",
            "kazoo.stat_decode_ns")
compare("`zk_watched_event_decode` (22 B)", "event_decode.zk", "hand-written C decode, no UTF-8 check",
        "event_decode.c_naive", "≤ 1.3×", 1.3, so_base_key="event_decode.c_so_naive")
compare("`zk_watched_event_decode` (22 B)", "event_decode.zk", "hand-written C decode + UTF-8 validation loop",
        "event_decode.c_utf8", "≤ 1.3×", 1.3, so_base_key="event_decode.c_so_utf8")
compare("`zk_watched_event_decode` (22 B)", "event_decode.zk",
        "C client `deserialize_WatcherEvent` (+ archive, deallocate)", "event_decode.zkc",
        "≥ 15× faster", 15, speedup=True, so_base_key="event_decode.zkc_so")
row_speedup("`zk_watched_event_decode` (22 B), `.so`", "event_decode.zk", "kazoo `Watch.deserialize`",
            "kazoo.watch_deserialize_ns")
for p, lib in (("static.", "`.a`"), ("", "`.so`")):
    rows.append(("`zk_notification_decode` (38 B), " + lib, fmt(med(p + "notification_decode.zk"), " ns"),
                 "—", "", "", "info", "info"))
# The properties' target is a time, judged on the .a build like the others.
props = med("static.stat_props.zk")
rows.append(("`zk_stat_properties_get`, `.a`", fmt(props, " ns"), "hand-written C",
             fmt(med("static.stat_props.c"), " ns"),
             fmt(paired("static.stat_props.zk", "static.stat_props.c"), "×")
             + spread("static.stat_props.zk", "static.stat_props.c"), "< 5 ns", check(props, lambda x: x < 5)))
row_ratio("`zk_stat_properties_get`, `.so`", "stat_props.zk", "hand-written C" + SO_C, "stat_props.c_so")
row_ratio("`zk_stat_properties_get`, `.so`", "stat_props.zk", "hand-written C, in the program", "stat_props.c")
row_speedup("`zk_stat_properties_get`, `.so`", "stat_props.zk", "kazoo: every `ZnodeStat` property",
            "kazoo.stat_props_ns")
# snprintf lives in libc, a shared library, whichever build calls it.
row_ratio("`zk_stat_format`, `.a`", "static.stat_format.zk", "`snprintf` of the same fields",
          "static.stat_format.snprintf", "≤ 1×", 1.0)
row_ratio("`zk_stat_format`, `.so`", "stat_format.zk", "`snprintf` of the same fields", "stat_format.snprintf")
row_speedup("`zk_stat_format`, `.so`", "stat_format.zk", "kazoo `repr(ZnodeStat)`", "kazoo.stat_repr_ns")

# ---- dispatcher throughput (events/s, end to end)
def row_eps(fig, key, limit=5e6):
    v = med(key)
    rows.append((fig, fmt(v, "eps"), "—", "", "", "≥ 5 M/s" if limit else "info",
                 check(v, lambda x: x >= limit) if limit else "info"))


row_eps("dispatcher: persistent watch", "throughput.persistent.eps")
row_speedup("dispatcher: persistent watch", "throughput.persistent.eps",
            "kazoo `SequentialThreadingHandler.dispatch_callback`", "kazoo.dispatch.eps", "≥ 10×", 10,
            unit="eps", higher_is_better=True)
row_eps("dispatcher: one-shot re-registered (`zk_watch_add` + event)", "throughput.oneshot.eps")
row_eps("dispatcher: recursive watch on `/app`, event 4 levels down", "throughput.recursive.eps", None)
row_speedup("dispatcher: `zk_dispatcher_submit`", "throughput.submit.eps",
            "kazoo `dispatch_callback`", "kazoo.dispatch.eps", unit="eps", higher_is_better=True)
row_speedup("frames: `zk_notification_decode` + one-shot re-registered + event", "throughput.frame.eps",
            "kazoo `_read_watch_event` + one-shot re-registered", "kazoo.read_watch_event.eps", "≥ 10×", 10,
            unit="eps", higher_is_better=True)

# ---- latency
rate = med("latency.rate")
for q, key in (("p50", "p50"), ("p99", "p99"), ("p99.9", "p999"), ("max", "max")):
    rows.append(("latency `zk_dispatcher_event` → callback, %s at %s events/s" % (q, fmt(rate, "") if rate else "n/a"),
                 fmt(med("latency.%s_us" % key), " µs"), "—", "", "", "report", "info"))

# ---- scale and memory
COUNTS = [10, 100, 1000, 10000, 100000, 1000000]
counts = [w for w in COUNTS if ("scale.oneshot.%d.e2e_ns" % w) in data]
top = counts[-1] if counts else None


def label(w):
    return "1M" if w == 1000000 else "%dk" % (w // 1000) if w >= 1000 else str(w)


for kind, name in (("oneshot", "one-shot re-registered"), ("recursive", "persistent-recursive")):
    for part, what, tgt in (("e2e", "end to end", "≤ 2×"), ("feed", "feeding thread", "info")):
        if top is None:
            continue
        a, b = "scale.%s.%d.%s_ns" % (kind, top, part), "scale.%s.10.%s_ns" % (kind, part)
        r = paired(a, b)
        rows.append(("per-event cost, %s, %s: %s vs 10 watches" % (name, what, label(top)),
                     fmt(med(a), " ns"), "10 watches", fmt(med(b), " ns"), fmt(r, "×") + spread(a, b), tgt,
                     check(r, lambda x: x <= 2) if tgt != "info" else "info"))
for kind, name in (("oneshot", "one-shot"), ("recursive", "persistent-recursive")):
    rss, heap = med("memory.%s.rss_per_watch" % kind), med("memory.%s.heap_per_watch" % kind)
    n, plen = med("memory.%s.count" % kind), med("memory.%s.path_len" % kind)
    rows.append(("memory per %s watch (RSS delta / %s; mean path %s B)" % (name, label(int(n)) if n else "?", fmt(plen)),
                 fmt(rss, " B"), "heap (mallinfo2) delta", fmt(heap, " B"), "", "< 200 B",
                 check(rss, lambda x: x < 200)))

# ---- the report
def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


quick = med("meta.quick") == 1
md = ["# zk-states benchmarks" + (" (QUICK MODE: tiny counts, figures meaningless)" if quick else ""), "",
      "Generated by `scripts/bench`%s on %s." % (" --quick" if quick else "", time.strftime("%Y-%m-%d %H:%M %Z")), "",
      "| Machine | |", "| --- | --- |",
      "| CPU | %s |" % cpu_model(),
      "| `nproc` | %d |" % os.cpu_count(),
      "| kernel | %s |" % platform.release(),
      "| load average at start / end | %s / %s |" % (data.get("meta.load_start", "?"), data.get("meta.load_end", "?")),
      "| compilers | %s; %s |" % (data.get("meta.cc", "?"), data.get("meta.rustc", "?")),
      "| library | %s |" % data.get("meta.library", "?"),
      "| kazoo | %s on Python %s |" % (data.get("kazoo.version", "not measured"), data.get("meta.python", "?")),
      ""]
load = str(data.get("meta.load_start", "0")).split()[:1] + str(data.get("meta.load_end", "0")).split()[:1]
if max(float(v) for v in load or ["0"]) > 1.5:
    md += ["**The machine was busy** (1-minute load average above 1.5 on %d CPUs): other processes shared the "
           "CPUs, so the multi-threaded figures (dispatcher throughput, latency, scale) are pessimistic. The "
           "micro-benchmarks use thread CPU time and are less affected." % os.cpu_count(), ""]
md += [
      "Medians over repetitions (micro: %d interleaved, dispatcher: %d, latency: %d, scale: %d interleaved across "
      "watch counts). The micro-benchmarks run twice, each build with its own interleaved baselines: rows "
      "marked `.a` come from the harness linked statically against `libzk_states.a` (direct calls); rows "
      "marked `.so` from the same harness linked against `libzk_states.so`, called through the PLT as a "
      "dynamically linked C program calls it. The targets are judged on the `.a` rows, where the library "
      "is called as its baselines are: the hand-written C baselines are functions of the program and the C "
      "client's decode exists only in `libzookeeper_mt.a` (the shared library does not export it). A call "
      "into any shared library costs a program more than a call to its own functions (see the call "
      "overhead rows: the same C function costs as much more when it sits in a shared library), so the "
      "`.so` rows are given, for information, against the same baselines compiled into a shared library "
      "(`bench/baselines_so.c`, called like `libzk_states.so`) and against the program's own. "
      "A ratio of two figures from the same interleaved loop is the median of the per-repetition "
      "ratios; kazoo runs in its own process, so its ratios are ratios of medians. The C baselines are out-of-line "
      "functions (`noipa`) with the library's signature, checks and results (verified: %s), compiled `-O2`; "
      "results go through `asm` sinks. Targets are reported, not asserted." % (
          len(data.get("stat_decode.zk", [])), len(data.get("throughput.persistent.eps", [])),
          len(data.get("latency.p50_us", [])), len(data.get("scale.oneshot.10.e2e_ns", [])),
          ", ".join("%s %s" % (k[6:], "ok" if v == [1.0] else "FAILED")
                    for k, v in sorted(data.items()) if k.startswith("check.")) or "n/a"),
      "",
      "| Figure | zk-states | Baseline | Baseline value | Ratio | Target | Result |",
      "| --- | --- | --- | --- | --- | --- | --- |"]
md += ["| %s |" % " | ".join(r) for r in rows]
passed = sum(r[6] == "PASS" for r in rows)
failed = sum(r[6] == "FAIL" for r in rows)
md += ["", "Targets: %d PASS, %d FAIL." % (passed, failed), "",
       "## Per-event cost vs registered watches", "",
       "Random events on registered paths (3 to 8 levels, mean %s B), one C feeding thread; end to end = "
       "(feed M events + flush) / M; feeding = the `zk_dispatcher_event` (+ `zk_watch_add`) calls alone; "
       "register = one `zk_watch_add` while filling. Ratios against 10 watches in parentheses. "
       "Plot: [dispatch_scale.svg](dispatch_scale.svg)." % fmt(med("memory.oneshot.path_len")), "",
       "| watches | one-shot end to end | one-shot feeding | one-shot register | recursive end to end | "
       "recursive feeding | recursive register |",
       "| --- | --- | --- | --- | --- | --- | --- |"]
for w in counts:
    cells = []
    for kind in ("oneshot", "recursive"):
        for part in ("e2e", "feed"):
            k = "scale.%s.%d.%s_ns" % (kind, w, part)
            cells.append("%s (%s)" % (fmt(med(k), " ns"), fmt(paired(k, "scale.%s.10.%s_ns" % (kind, part)), "×")))
        cells.append(fmt(med("scale.%s.%d.add_ns" % (kind, w)), " ns"))
    md.append("| %s | %s |" % (label(w), " | ".join(cells)))
open(out_md, "w").write("\n".join(md) + "\n")

# ---- the plot: hand-written SVG, log x axis
W, H, L, R, T, B = 640, 380, 70, 20, 40, 50
series = [("one-shot, end to end", "oneshot", "e2e", "#1f77b4", ""),
          ("one-shot, feeding", "oneshot", "feed", "#1f77b4", "5,4"),
          ("recursive, end to end", "recursive", "e2e", "#d62728", ""),
          ("recursive, feeding", "recursive", "feed", "#d62728", "5,4")]
pts = {s[0]: [(w, med("scale.%s.%d.%s_ns" % (s[1], w, s[2]))) for w in counts] for s in series}
ymax = max([v for p in pts.values() for _, v in p if v] or [1]) * 1.1
step = 10 ** math.floor(math.log10(ymax / 4))
step *= 5 if ymax / step > 20 else 2 if ymax / step > 8 else 1
x = lambda w: L + (math.log10(w) - 1) / 5 * (W - L - R)
y = lambda v: H - B - v / ymax * (H - T - B)
svg = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">' % (W, H),
       '<rect width="100%" height="100%" fill="white"/>',
       '<text x="%d" y="22" font-size="14" text-anchor="middle">zk-states dispatcher: per-event cost vs registered watches</text>' % (W / 2)]
v = 0.0
while v <= ymax:
    svg.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%g</text>'
               % (L, W - R, y(v), y(v), L - 6, y(v) + 4, v))
    v += step
for w in COUNTS:
    svg.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#ddd"/><text x="%.1f" y="%d" text-anchor="middle">%s</text>'
               % (x(w), x(w), T, H - B, x(w), H - B + 16, label(w)))
svg.append('<text x="%d" y="%d" text-anchor="middle">registered watches (log scale)</text>' % ((L + W - R) / 2, H - 12))
svg.append('<text x="16" y="%d" text-anchor="middle" transform="rotate(-90 16 %d)">ns per event (median)</text>'
           % ((T + H - B) / 2, (T + H - B) / 2))
for i, (name, _, _, color, dash) in enumerate(series):
    p = [(x(w), y(v)) for w, v in pts[name] if v is not None]
    if p:
        svg.append('<polyline fill="none" stroke="%s" stroke-width="2" stroke-dasharray="%s" points="%s"/>'
                   % (color, dash, " ".join("%.1f,%.1f" % q for q in p)))
        svg += ['<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>' % (a, b, color) for a, b in p]
    ly = T + 8 + i * 16
    svg.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2" stroke-dasharray="%s"/>'
               '<text x="%d" y="%d">%s</text>' % (L + 10, L + 34, ly, ly, color, dash, L + 40, ly + 4, name))
svg.append("</svg>")
open(out_svg, "w").write("\n".join(svg) + "\n")
print("wrote %s (%d PASS, %d FAIL) and %s" % (out_md, passed, failed, out_svg))
