#!/usr/bin/env python3
"""Reload driver of bench/reload10k.sh: swaps pre-generated configs in at even intervals and
times how long each takes to be served.

    reload_driver.py TMP COUNT DURATION PROXY_PORT [--dry]

Configs are generated before the load starts (TMP/staged/G.yaml for G = 2..COUNT+1), so the
measured window holds no config generation, only a rename into TMP/conf (atomic, as a ConfigMap
update is). After each rename it polls the marker route every 20 ms over one keep-alive
connection until it answers G, and appends the milliseconds from rename to answer to
TMP/visible.txt. With --dry (the baseline run) it polls the same marker at the same cadence for
the same windows without renaming anything, so both runs carry the same extra traffic.
One process for the whole run: no fork per poll competing with the gateway for the CPU.
"""

import http.client
import os
import sys
import time

POLL_S = 0.02
DRY_POLLS = 40  # a dry window: about as long as a 10k-route reload takes to show
TIMEOUT_S = 20.0


def marker(conn_box, port):
    """The marker route's body, or None; reconnects after any error."""
    for _ in range(2):
        if conn_box[0] is None:
            conn_box[0] = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            conn_box[0].request("GET", "/generation", headers={"Host": "marker.bench"})
            return conn_box[0].getresponse().read().decode()
        except (OSError, http.client.HTTPException):
            conn_box[0].close()
            conn_box[0] = None
    return None


def main():
    tmp, count, duration, port = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    dry = "--dry" in sys.argv[5:]
    gap = duration / (count + 1)
    start = time.monotonic()
    conn = [None]
    visible = []
    for k in range(1, count + 1):
        # evenly spaced, the first after one gap (the load is running by then)
        time.sleep(max(0.0, start + k * gap - time.monotonic()))
        gen = str(k + 1)
        if dry:
            for _ in range(DRY_POLLS):
                marker(conn, port)
                time.sleep(POLL_S)
            continue
        t0 = time.monotonic()
        os.rename(f"{tmp}/staged/{gen}.yaml", f"{tmp}/conf/gateway.yaml")
        while marker(conn, port) != gen:
            if time.monotonic() - t0 > TIMEOUT_S:
                sys.exit(f"reload10k: generation {gen} not served after {TIMEOUT_S:.0f} s")
            time.sleep(POLL_S)
        visible.append(round((time.monotonic() - t0) * 1000))
    if not dry:
        with open(f"{tmp}/visible.txt", "w") as f:
            f.write("\n".join(map(str, visible)) + "\n")


if __name__ == "__main__":
    main()
