#!/usr/bin/env python3
"""Turns bench/run.sh's raw runs into medians, ratios to nginx, a JSON file and a markdown table.

usage: summarize.py RAW.jsonl META.json OUT_PREFIX   (writes OUT_PREFIX.json and OUT_PREFIX.md)
"""
import json
import statistics
import sys

LABELS = {
    "nginx": "nginx (proxy, upstream keepalive)",
    "haproxy": "HAProxy (http-reuse always)",
    "portcullis-plain": "Portcullis plain",
    "portcullis-full": "Portcullis all protections",
}


def per_run(row):
    w = row["wrk"]
    secs = w["duration_us"] / 1e6
    reqs = w["requests"]
    cpu_s = row["proxy_cpu_ticks"] / row["hz"]
    errors = sum(w["errors"].values())
    return {
        "rps": reqs / secs,
        "p50_us": w["latency_us"]["p50"],
        "p99_us": w["latency_us"]["p99"],
        "p999_us": w["latency_us"]["p999"],
        "cpu_us_per_req": cpu_s * 1e6 / reqs if reqs else None,
        "proxy_cpu_util": cpu_s / secs,
        "backend_cpu_util": row["backend_cpu_ticks"] / row["hz"] / secs,
        "errors": errors,
        "non_2xx": w["errors"]["status"],
    }


def main():
    raw_path, meta_path, prefix = sys.argv[1:4]
    meta = json.load(open(meta_path))
    runs = {}
    for line in open(raw_path):
        if line.strip():
            row = json.loads(line)
            runs.setdefault(row["scenario"], []).append(per_run(row))

    results = {}
    for name, rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs if r[k] is not None)
               for k in ("rps", "p50_us", "p99_us", "p999_us", "cpu_us_per_req",
                         "proxy_cpu_util", "backend_cpu_util")}
        med["errors_total"] = sum(r["errors"] for r in rs)
        med["rps_min"] = min(r["rps"] for r in rs)
        med["rps_max"] = max(r["rps"] for r in rs)
        med["peak_rss_kib"] = meta.get("peak_rss_kib", {}).get(name)
        med["runs"] = rs
        results[name] = med

    base = results.get("nginx")
    for name, m in results.items():
        if base:
            m["ratio_rps"] = m["rps"] / base["rps"]
            m["ratio_cpu_per_req"] = m["cpu_us_per_req"] / base["cpu_us_per_req"]
            m["ratio_p99"] = m["p99_us"] / base["p99_us"]
            if m["peak_rss_kib"] and base["peak_rss_kib"]:
                m["ratio_rss"] = m["peak_rss_kib"] / base["peak_rss_kib"]

    json.dump({"meta": meta, "results": results}, open(prefix + ".json", "w"), indent=1)

    def r(m, k, fmt="{:.2f}"):
        return fmt.format(m[k]) if k in m and m[k] is not None else "–"

    lines = [
        f"# Proxy benchmark {meta['date']}",
        "",
        f"{meta['ncpu']} cores ({meta['cpu_model']}), kernel {meta['kernel']}; proxy on core "
        f"{meta['proxy_cpu']}, wrk + backend on core {meta['load_cpu']}; wrk -t{meta['wrk_threads']} "
        f"-c{meta['connections']}, {meta['runs']} x {meta['duration_s']} s per scenario "
        f"(interleaved), {meta['warmup_s']} s warm-up; load average at end {meta['loadavg_at_end']}. "
        f"nginx {meta['nginx']}, HAProxy {meta['haproxy']}, wrk {meta['wrk']}.",
        "",
        "| scenario | req/s (median) | min–max | p50 µs | p99 µs | p99.9 µs | proxy CPU µs/req "
        "| proxy core busy | peak RSS MiB | req/s ÷ nginx | CPU/req ÷ nginx | p99 ÷ nginx | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ("nginx", "haproxy", "portcullis-plain", "portcullis-full"):
        if name not in results:
            continue
        m = results[name]
        rss = f"{m['peak_rss_kib'] / 1024:.1f}" if m["peak_rss_kib"] else "–"
        lines.append(
            f"| {LABELS[name]} | {m['rps']:.0f} | {m['rps_min']:.0f}–{m['rps_max']:.0f} "
            f"| {m['p50_us']:.0f} | {m['p99_us']:.0f} | {m['p999_us']:.0f} "
            f"| {m['cpu_us_per_req']:.1f} | {m['proxy_cpu_util'] * 100:.0f}% | {rss} "
            f"| {r(m, 'ratio_rps')} | {r(m, 'ratio_cpu_per_req')} | {r(m, 'ratio_p99')} "
            f"| {m['errors_total']} |")
    lines.append("")
    if meta.get("waf_active") is not None:
        lines.append(f"portcullis-full sanity probes: request without token refused (401): "
                     f"{str(meta['auth_active']).lower()}; SQLi/XSS probe blocked (403): "
                     f"{str(meta['waf_active']).lower()}.")
        lines.append("")
    open(prefix + ".md", "w").write("\n".join(lines))


if __name__ == "__main__":
    main()
