#!/usr/bin/env python3
"""Turns bench/run.sh's raw runs into medians, ratios to nginx, a JSON file, a markdown table per
workload and a plot of CPU time per request.

usage: summarize.py RAW.jsonl META.json OUT_PREFIX
writes OUT_PREFIX.json, OUT_PREFIX.md and, when matplotlib is installed (python3-matplotlib,
make deps-bench), OUT_PREFIX.png.
"""
import json
import statistics
import sys

# workload -> (title, baseline scenario, scenarios in table order with their labels)
GROUPS = [
    ("get", "GET / (13-byte answer)", "nginx", [
        ("nginx", "nginx (proxy, upstream keepalive)"),
        ("haproxy", "HAProxy (http-reuse always)"),
        ("pingora-bare", "Pingora alone (minimal ProxyHttp, defaults)"),
        ("portcullis-plain", "Portcullis plain"),
        ("portcullis-full", "Portcullis all protections"),
        ("nginx-modsec", "nginx + ModSecurity 3 + CRS"),
    ]),
    ("post", "POST /api/v1/orders, 2 KB JSON body", "post-nginx", [
        ("post-nginx", "nginx"),
        ("post-portcullis-full", "Portcullis all protections (WAF reads the body)"),
        ("post-nginx-modsec", "nginx + ModSecurity 3 + CRS"),
    ]),
    ("1k", "GET /static/1k (1 KiB answer)", "1k-nginx", [
        ("1k-nginx", "nginx"), ("1k-haproxy", "HAProxy"), ("1k-portcullis-plain", "Portcullis plain"),
    ]),
    ("128k", "GET /static/128k (128 KiB answer)", "128k-nginx", [
        ("128k-nginx", "nginx"), ("128k-haproxy", "HAProxy"),
        ("128k-portcullis-plain", "Portcullis plain"),
    ]),
    ("tls-new", "TLS, a new connection and full handshake per request", "tls-new-nginx", [
        ("tls-new-nginx", "nginx"), ("tls-new-portcullis-plain", "Portcullis plain"),
    ]),
    ("tls-ka", "TLS keep-alive (one handshake per connection)", "tls-ka-nginx", [
        ("tls-ka-nginx", "nginx"), ("tls-ka-portcullis-plain", "Portcullis plain"),
    ]),
    ("tls-resume", "TLS, a new connection per request resuming the session (openssl s_time "
     "-reuse, one connection at a time)", "tls-resume-nginx", [
        ("tls-resume-nginx", "nginx"), ("tls-resume-portcullis-plain", "Portcullis plain"),
    ]),
    ("rate", "fixed rate (oha, latency corrected)", "rate-nginx", [
        ("rate-nginx", "nginx"), ("rate-portcullis-plain", "Portcullis plain"),
    ]),
]
GROUP_OF = {s: g[0] for g in GROUPS for s, _ in g[3]}
PROXY_OF = {"nginx": "nginx", "haproxy": "HAProxy", "pingora-bare": "Pingora alone",
            "portcullis-plain": "Portcullis plain",
            "portcullis-full": "Portcullis all protections",
            "nginx-modsec": "nginx + ModSecurity + CRS"}


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


def proxy_label(name):
    for prefix in ("post-", "1k-", "128k-", "tls-new-", "tls-ka-", "tls-resume-", "rate-"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    return PROXY_OF.get(name, name)


def plot(results, meta, path):
    """Horizontal bars, one block per workload: CPU µs/request of each proxy (log scale, since
    ModSecurity costs hundreds of times more than a plain proxy)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        print("summarize: matplotlib missing (apt-get install python3-matplotlib), no plot",
              file=sys.stderr)
        return False
    colours = {"nginx": "#2b8cbe", "HAProxy": "#74a9cf", "Pingora alone": "#fdae6b",
               "Portcullis plain": "#e6550d",
               "Portcullis all protections": "#a63603", "nginx + ModSecurity + CRS": "#636363"}
    labels, values, cols, ticks = [], [], [], []
    y = 0
    for workload, title, _, members in GROUPS:
        rows = [(s, results[s]) for s, _ in members if s in results]
        if not rows:
            continue
        ticks.append((y, title))
        y += 1
        for s, m in rows:
            labels.append((y, proxy_label(s)))
            values.append((y, m["cpu_us_per_req"]))
            cols.append(colours.get(proxy_label(s), "#999999"))
            y += 1
        y += 0.5
    fig, ax = plt.subplots(figsize=(9, 0.32 * y + 1.6))
    ax.barh([v[0] for v in values], [v[1] for v in values], color=cols)
    for (yy, v) in values:
        ax.text(v * 1.05, yy, f"{v:.1f}", va="center", fontsize=8)
    ax.set_yticks([l[0] for l in labels], [l[1] for l in labels], fontsize=8)
    for yy, title in ticks:
        ax.text(0.01, yy, title, transform=ax.get_yaxis_transform(), fontsize=9,
                fontweight="bold", va="center")
    ax.set_ylim(y - 0.4, -0.7)  # top to bottom, group title rows included
    ax.set_xscale("log")
    # Bars start at 1 µs so that their lengths compare on the log scale; plain numbers on the axis.
    ax.set_xlim(left=1, right=max(v[1] for v in values) * 4)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("proxy CPU time per request, µs (median of runs; log scale; lower is better)")
    ax.set_title(f"Proxy CPU per request, {meta['date']}, {meta['runs']} x {meta['duration_s']} s, "
                 f"load avg at end {meta['loadavg_at_end']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


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
        med = {k: statistics.median(vs) if (vs := [r[k] for r in rs if r[k] is not None]) else None
               for k in ("rps", "p50_us", "p99_us", "p999_us", "cpu_us_per_req",
                         "proxy_cpu_util", "backend_cpu_util")}
        med["errors_total"] = sum(r["errors"] for r in rs)
        med["rps_min"] = min(r["rps"] for r in rs)
        med["rps_max"] = max(r["rps"] for r in rs)
        med["peak_rss_kib"] = meta.get("peak_rss_kib", {}).get(name)
        med["group"] = GROUP_OF.get(name)
        med["runs"] = rs
        results[name] = med

    # Ratios are to the nginx scenario of the same workload, measured in the same run.
    for _, _, base_name, members in GROUPS:
        base = results.get(base_name)
        if not base:
            continue
        for name, _ in members:
            m = results.get(name)
            if not m:
                continue
            m["ratio_rps"] = m["rps"] / base["rps"]
            if m["cpu_us_per_req"] and base["cpu_us_per_req"]:
                m["ratio_cpu_per_req"] = m["cpu_us_per_req"] / base["cpu_us_per_req"]
            if base["p99_us"]:
                m["ratio_p99"] = m["p99_us"] / base["p99_us"]
            if m["peak_rss_kib"] and base["peak_rss_kib"]:
                m["ratio_rss"] = m["peak_rss_kib"] / base["peak_rss_kib"]
    # nginx + ModSecurity against nginx plain: the WAF cost users know (issue 9).
    for modsec, plain in (("nginx-modsec", "nginx"), ("post-nginx-modsec", "post-nginx"),
                          ("portcullis-full", "nginx"), ("post-portcullis-full", "post-nginx")):
        if modsec in results and plain in results and results[plain]["cpu_us_per_req"]:
            results[modsec]["ratio_cpu_to_nginx_plain"] = (
                results[modsec]["cpu_us_per_req"] / results[plain]["cpu_us_per_req"])

    json.dump({"meta": meta, "results": results}, open(prefix + ".json", "w"), indent=1)
    has_plot = plot(results, meta, prefix + ".png")

    def r(m, k, fmt="{:.2f}"):
        return fmt.format(m[k]) if k in m and m[k] is not None else "–"

    lines = [
        f"# Proxy benchmark {meta['date']}",
        "",
        f"{meta['ncpu']} cores ({meta['cpu_model']}), kernel {meta['kernel']}; proxy on core "
        f"{meta['proxy_cpu']}, load generator + backend on core {meta['load_cpu']}"
        f"{'' if meta.get('pinned', True) else ' (not pinned)'}; wrk -t{meta['wrk_threads']} "
        f"-c{meta['connections']}, {meta['runs']} x {meta['duration_s']} s per scenario "
        f"(interleaved), {meta['warmup_s']} s warm-up; load average at end {meta['loadavg_at_end']}. "
        f"nginx {meta['nginx']}, HAProxy {meta['haproxy']}, wrk {meta['wrk']}"
        + (f", oha {meta['oha']} at {meta['rate']} req/s" if meta.get("oha") else "")
        + (f", libmodsecurity3 {meta['libmodsecurity3']} + CRS {meta['modsecurity_crs']}"
           if meta.get("libmodsecurity3") else "")
        + f", OpenSSL {meta.get('openssl', '?')}.",
        "",
    ]
    if meta.get("skipped"):
        lines += [f"Skipped (tool not installed): {', '.join(meta['skipped'])}.", ""]
    header = ("| proxy | req/s (median) | min–max | p50 µs | p99 µs | p99.9 µs | proxy CPU µs/req "
              "| proxy core busy | peak RSS MiB | req/s ÷ nginx | CPU/req ÷ nginx | p99 ÷ nginx "
              "| errors |")
    for workload, title, _, members in GROUPS:
        present = [(s, label) for s, label in members if s in results]
        if not present:
            continue
        lines += [f"## {title}", "", header,
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, label in present:
            m = results[name]
            rss = f"{m['peak_rss_kib'] / 1024:.1f}" if m["peak_rss_kib"] else "–"
            cpu = f"{m['cpu_us_per_req']:.1f}" if m["cpu_us_per_req"] is not None else "–"
            lat = {k: f"{m[k]:.0f}" if m[k] is not None else "–"
                   for k in ("p50_us", "p99_us", "p999_us")}
            lines.append(
                f"| {label} (`{name}`) | {m['rps']:.0f} | {m['rps_min']:.0f}–{m['rps_max']:.0f} "
                f"| {lat['p50_us']} | {lat['p99_us']} | {lat['p999_us']} "
                f"| {cpu} | {m['proxy_cpu_util'] * 100:.0f}% | {rss} "
                f"| {r(m, 'ratio_rps')} | {r(m, 'ratio_cpu_per_req')} | {r(m, 'ratio_p99')} "
                f"| {m['errors_total']} |")
        lines.append("")
        if workload == "tls-resume":
            lines += ["One connection at a time, so req/s is the client's pace and latency is not "
                      "measured; CPU µs/request is per resumed connection (TCP, resumption, one "
                      "request). Errors count connections that did not resume.", ""]
        if workload == "rate":
            lines += ["At a fixed rate the req/s column is the offered rate achieved; latency is "
                      "measured from when each request was due (oha --latency-correction).", ""]
    extra = [f"{n}: {results[n]['ratio_cpu_to_nginx_plain']:.1f} × nginx plain's CPU/request"
             for n in ("portcullis-full", "nginx-modsec", "post-portcullis-full",
                       "post-nginx-modsec") if "ratio_cpu_to_nginx_plain" in results.get(n, {})]
    if extra:
        lines += ["WAF cost against nginx plain (same request, same run): " + "; ".join(extra)
                  + ".", ""]
    if meta.get("probes"):
        lines.append("Sanity probes (a protection that is off would make the numbers above "
                     "meaningless):")
        lines += [f"- {k}: {'ok' if v else '**FAILED**'}" for k, v in meta["probes"].items()]
        lines.append("")
    if meta.get("tls"):
        lines.append("TLS as negotiated with OpenSSL's default client (as wrk's): "
                     + "; ".join(f"{k}: {v}" for k, v in meta["tls"].items()) + ".")
        lines.append("")
    if has_plot:
        lines += [f"![CPU per request]({prefix.rsplit('/', 1)[-1]}.png)", ""]
    open(prefix + ".md", "w").write("\n".join(lines))


if __name__ == "__main__":
    main()
