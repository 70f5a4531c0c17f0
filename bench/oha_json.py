#!/usr/bin/env python3
"""Turns oha's JSON report (--output-format json) into the line bench/report.lua prints for wrk.

usage: oha_json.py OHA.json   (prints one JSON line: duration, counts, errors, latency in µs)
oha's latencies are in seconds; with --latency-correction they are measured from the moment each
request was due at the fixed rate, not from when it was sent (no coordinated omission).
"""
import json
import sys


def main() -> None:
    d = json.load(open(sys.argv[1]))
    s = d["summary"]
    pct = d.get("latencyPercentiles", {})
    ok = sum(d.get("statusCodeDistribution", {}).values())
    non_2xx = sum(n for code, n in d.get("statusCodeDistribution", {}).items()
                  if not code.startswith("2"))
    failed = sum(d.get("errorDistribution", {}).values())
    if failed:  # oha's own words for what failed, for the log
        print(f"oha errors: {json.dumps(d['errorDistribution'])}", file=sys.stderr)

    def us(key):
        v = pct.get(key)
        return int(round(v * 1e6)) if v is not None else 0

    print(json.dumps({
        "duration_us": int(s["total"] * 1e6),
        "requests": ok,
        "bytes": int(s.get("totalData") or 0),
        # oha does not tell connect, read and write errors apart: all go under "read"
        "errors": {"connect": 0, "read": failed, "write": 0, "status": non_2xx, "timeout": 0},
        "latency_us": {"mean": round((s.get("average") or 0) * 1e6, 1), "p50": us("p50"),
                       "p90": us("p90"), "p99": us("p99"), "p999": us("p99.9"),
                       "max": int(round((s.get("slowest") or 0) * 1e6))},
    }, separators=(",", ":")))


if __name__ == "__main__":
    main()
