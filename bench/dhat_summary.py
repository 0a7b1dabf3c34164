"""Where the memory of registered watches goes, from a DHAT profile.

  valgrind --tool=dhat --dhat-out-file=dhat.out target/bench/dispatch memory oneshot 100000
  python3 bench/dhat_summary.py dhat.out 100000

Groups the heap live at the global peak by the innermost zk-states source
line that allocated it, in bytes and blocks per watch (the harness's own path
strings are listed as "harness"). Each block also costs malloc ~8-16 bytes.
"""
import collections
import json
import re
import sys

CRATE_FILES = {n + ".rs" for n in "dispatch path stat wire event session state status c_client core mod".split()}
profile, count = json.load(open(sys.argv[1])), int(sys.argv[2])
frames = profile["ftbl"]
size, blocks = collections.Counter(), collections.Counter()
for pp in profile["pps"]:
    site = "other"
    for f in (frames[i] for i in pp["fs"]):
        if "dispatch.c" in f or "bench.h" in f:
            site = "harness"
            break
        m = re.search(r": (.+) \((\w+\.rs):(\d+)\)$", f)  # the crate's frames: bare file names
        if m and m.group(2) in CRATE_FILES:
            site = "%s (%s:%s)" % (m.group(1)[:70], m.group(2), m.group(3))
            break
    size[site] += pp["gb"]
    blocks[site] += pp["gbk"]
print("%10s %12s  %s" % ("B/watch", "blocks/watch", "allocated at (live at the peak)"))
for site, b in size.most_common():
    if b / count >= 0.05:
        print("%10.1f %12.2f  %s" % (b / count, blocks[site] / count, site))
lib = [s for s in size if s != "harness"]
print("%10.1f %12.2f  total without the harness" % (sum(size[s] for s in lib) / count,
                                                      sum(blocks[s] for s in lib) / count))
