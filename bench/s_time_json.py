#!/usr/bin/env python3
"""Turns `openssl s_time -reuse -www /` output into the line bench/report.lua prints for wrk.

usage: s_time_json.py S_TIME.out WALL_MS   (prints one JSON line: duration, connections, resumed)
WALL_MS is the run's wall time measured by the caller (s_time rounds its own to whole seconds).
s_time opens one connection at a time: after the first full handshake every connection resumes
the session (TLS 1.3 PSK or TLS 1.2 session id), sends one GET and reads the answer. Each
connection is one request. It prints `r` for a resumed connection and `*` for a full handshake;
a server that does not resume shows up as `*` and is reported on stderr. Latency percentiles are
not measured (null): the client is serial, so throughput is client-bound and only CPU time per
connection on the proxy side is comparable.
"""
import json
import re
import sys


def main() -> None:
    text = open(sys.argv[1], errors="replace").read()
    # The -reuse pass is the last "N connections in T real seconds" line s_time prints.
    runs = re.findall(r"(\d+) connections in (\d+) real seconds", text)
    if not runs:
        sys.exit(f"s_time_json: no result in {sys.argv[1]}:\n{text[-400:]}")
    conns = int(runs[-1][0])
    wall_us = int(sys.argv[2]) * 1000
    marks = re.findall(r"^[r*]+$", text.split("session id reuse", 1)[-1], re.M)
    resumed = sum(m.count("r") for m in marks)
    full = sum(m.count("*") for m in marks)
    if full:
        print(f"s_time: {full} of {conns} connections made a full handshake", file=sys.stderr)
    none = None  # not measured
    print(json.dumps({
        "duration_us": wall_us,
        "requests": conns,
        "bytes": 0,
        # a connection that did not resume counts as an error: the scenario measures resumption
        "errors": {"connect": 0, "read": 0, "write": 0, "status": full, "timeout": 0},
        "latency_us": {"mean": none, "p50": none, "p90": none, "p99": none, "p999": none,
                       "max": none},
        "resumed": resumed,
    }, separators=(",", ":")))


if __name__ == "__main__":
    main()
