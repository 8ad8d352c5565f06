#!/usr/bin/env python3
"""The connection thread's share of a cycle: CPU time per claim -> complete cycle on kanband's
one database thread, and how much of the wall time that thread spends on the CPU and waiting
for it, read from /proc while `kanband-bench --scenario cycle` drives a kanband started here.

    python3 bench/connection_thread.py KANBAND [--bench target/release/kanband-bench] [--seconds 4]
        [--perf perf.data]

Cycles are counted from /metrics (`kanband_grants_total`) over the same window. With `--perf`,
`perf record --call-graph dwarf` samples the connection thread through the window, which slows
it (read the profile with `perf report -i FILE --children`). The same
binary drifts by 10-15 % over an hour on a small VM, so compare binaries in alternating runs
(A B A B). Ends only the processes it started, by their pid.
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def grants(http, timeout=5):
    """kanband_grants_total from kanband's /metrics at `http`."""
    with urllib.request.urlopen(f"http://{http}/metrics", timeout=timeout) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith("kanband_grants_total "):
                return float(line.split()[1])
    return 0.0


def threads(pid):
    """Every thread of `pid` named like the process, but the main one: the threads kanband
    starts itself (its connection thread among them; tokio's workers have their own name)."""
    name = open(f"/proc/{pid}/comm").read()
    found = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        if int(tid) != pid and open(f"/proc/{pid}/task/{tid}/comm").read() == name:
            found.append(int(tid))
    return found


def sample(pid, tid):
    """(on-CPU seconds, run-queue wait seconds) of one thread so far."""
    stat = open(f"/proc/{pid}/task/{tid}/stat").read()
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
    waited = int(open(f"/proc/{pid}/task/{tid}/schedstat").read().split()[1]) / 1e9
    return cpu, waited


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kanband", help="the kanband binary to measure")
    parser.add_argument("--bench", default="target/release/kanband-bench")
    parser.add_argument("--seconds", type=float, default=4.0, help="the measured window")
    parser.add_argument("--perf", metavar="FILE", help="also record a perf profile of the thread")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        http = f"127.0.0.1:{free_port()}"
        kanband = subprocess.Popen(
            [args.kanband, "--data-dir", data, "--listen", f"127.0.0.1:{free_port()}",
             "--http", http],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        bench = None
        try:
            socket_path = os.path.join(data, "kanband.sock")
            deadline = time.monotonic() + 10
            while not os.path.exists(socket_path):
                if time.monotonic() > deadline or kanband.poll() is not None:
                    sys.exit("kanband did not start")
                time.sleep(0.05)
            bench = subprocess.Popen(
                [args.bench, "--addr", f"unix:{socket_path}", "--scenario", "cycle",
                 "--runs", "1", "--results", "-"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # Past the set-up (creating the tasks) and into the cycles.
            deadline = time.monotonic() + 60
            while grants(http) < 5000:
                if time.monotonic() > deadline or bench.poll() is not None:
                    sys.exit("the cycle load did not start")
                time.sleep(0.1)
            tids = threads(kanband.pid)
            before = {tid: sample(kanband.pid, tid) for tid in tids}
            g0, t0 = grants(http), time.monotonic()
            if args.perf:
                # The busiest thread so far is the connection thread (see below).
                time.sleep(0.5)
                busiest = max(tids, key=lambda t: sample(kanband.pid, t)[0] - before[t][0])
                subprocess.run(
                    ["perf", "record", "-q", "--call-graph", "dwarf", "-t", str(busiest),
                     "-o", args.perf, "--", "sleep", str(args.seconds - 0.5)],
                    check=True, stdout=subprocess.DEVNULL)
            else:
                time.sleep(args.seconds)
            after = {tid: sample(kanband.pid, tid) for tid in tids}
            g1, t1 = grants(http), time.monotonic()
            bench.wait()
        finally:
            for process in (bench, kanband):
                if process is not None and process.poll() is None:
                    process.terminate()
                    process.wait()

    # The connection thread is the busiest of kanband's own threads under this load.
    tid = max(tids, key=lambda t: after[t][0] - before[t][0])
    cpu = after[tid][0] - before[tid][0]
    waited = after[tid][1] - before[tid][1]
    wall = t1 - t0
    cycles = g1 - g0
    print(f"{args.kanband}: {cycles / wall:.0f} cycles/s; connection thread on the CPU "
          f"{cpu / wall:.0%} of the time, waiting for it {waited / wall:.0%}; "
          f"{cpu / cycles * 1e6:.1f} us of CPU per cycle")


if __name__ == "__main__":
    main()
