#!/usr/bin/env python3
"""Per-trial overhead of a sweep's executor, from a finished sweep run folder:
submission -> start (journal "start" event -> the trial runner's started_unix
in status.json) and end -> journal (the trial's end, started_unix + duration_s,
-> the journal's "end" event).  Usage: overhead.py RUN_DIR [RUN_DIR...]"""
import json, os, statistics, sys

for run in sys.argv[1:]:
    starts, ends = {}, {}
    with open(os.path.join(run, "journal.jsonl")) as f:
        for line in f:
            ev = json.loads(line)
            if ev.get("t") == "start":
                starts[ev["n"]] = ev
            elif ev.get("t") == "end":
                ends[ev["n"]] = ev
    sub, fin = [], []
    ex = "?"
    for n, s in starts.items():
        ex = s.get("executor", "?")
        with open(os.path.join(run, "trials", str(n), "status.json")) as f:
            st = json.load(f)
        t0 = st["started_unix"]
        sub.append(t0 - s["time"])
        if n in ends and st.get("duration_s") is not None:
            fin.append(ends[n]["time"] - (t0 + st["duration_s"]))
    def fmt(v):
        return "min %.2f / median %.2f / max %.2f s" % (min(v), statistics.median(v), max(v)) if v else "-"
    print("%s (%s, %d trials): submission->start %s; end->journal %s" % (run, ex, len(starts), fmt(sub), fmt(fin)))
