#!/usr/bin/env python3
"""Instructions per claim -> complete cycle on kanband's connection thread, counted by
callgrind: a figure that is the same for the same binary and load however busy the machine is,
for telling two binaries apart where the cycles/s of `kanband-bench` drift by more than the
change (a small VM's drift is 10-15 % within an hour).

    python3 bench/callgrind_cycle.py KANBAND [KANBAND ...] [--bench target/release/kanband-bench]
        [--seconds 20] [--sessions 2] [--slots 4] [--tasks 20000] [--keep FILE]

Each binary runs under `valgrind --tool=callgrind` with instrumentation off; once the load of
`kanband-bench --scenario cycle` is past its set-up, instrumentation is switched on for the
window, and the instructions of the connection thread (the busiest thread) are divided by the
grants the window counted (`kanband_grants_total`). The load is small (`--sessions` x `--slots`
workers), so commits are shared by few writes, as on an idle server: the figure is for
comparing binaries, not for the README's table. Ends only the processes it started, by pid.
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

from connection_thread import free_port, grants


def thread_instructions(out_prefix):
    """Instructions (Ir) of each thread's dump, from the `totals:` line of its file."""
    counts = {}
    for path in glob.glob(out_prefix + "*"):
        with open(path) as f:
            for line in f:
                if line.startswith("totals:"):
                    counts[path] = int(line.split()[1])
    return counts


def measure(kanband_bin, args, tmp):
    data = os.path.join(tmp, "data")
    http = f"127.0.0.1:{free_port()}"
    out = os.path.join(tmp, "callgrind.out")
    kanband = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes",
         f"--callgrind-out-file={out}", kanband_bin, "--data-dir", data,
         "--listen", f"127.0.0.1:{free_port()}", "--http", http],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bench = None
    try:
        socket_path = os.path.join(data, "kanband.sock")
        deadline = time.monotonic() + 120
        while not os.path.exists(socket_path):
            if time.monotonic() > deadline or kanband.poll() is not None:
                sys.exit("kanband did not start under valgrind")
            time.sleep(0.2)
        bench = subprocess.Popen(
            [args.bench, "--addr", f"unix:{socket_path}", "--scenario", "cycle", "--runs", "1",
             "--results", "-", "--cycle-sessions", str(args.sessions),
             "--cycle-slots", str(args.slots), "--cycle-tasks", str(args.tasks),
             "--duration", str(int(args.seconds * 3 + 120))],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 600
        while grants(http, timeout=30) < 200:
            if time.monotonic() > deadline or bench.poll() is not None:
                sys.exit("the cycle load did not start")
            time.sleep(0.5)
        control = ["callgrind_control", str(kanband.pid)]
        subprocess.run(control + ["--zero"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        subprocess.run(control + ["--instr=on"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        g0 = grants(http, timeout=30)
        time.sleep(args.seconds)
        g1 = grants(http, timeout=30)
        subprocess.run(control + ["--instr=off"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        subprocess.run(control + ["--dump"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    finally:
        for process in (bench, kanband):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait()
    counts = thread_instructions(out)
    busiest = max(counts, key=counts.get)
    if args.keep:
        shutil.copyfile(busiest, args.keep)
    return counts[busiest], g1 - g0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kanband", nargs="+", help="the kanband binaries to measure")
    parser.add_argument("--bench", default="target/release/kanband-bench")
    parser.add_argument("--seconds", type=float, default=20.0, help="the measured window")
    parser.add_argument("--sessions", type=int, default=2)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=20_000, help="ready tasks created first")
    parser.add_argument("--keep", metavar="FILE",
                        help="copy the connection thread's callgrind file here (read it with "
                             "callgrind_annotate --inclusive=yes FILE)")
    args = parser.parse_args()
    for kanband_bin in args.kanband:
        with tempfile.TemporaryDirectory() as tmp:
            instructions, cycles = measure(kanband_bin, args, tmp)
        print(f"{kanband_bin}: {instructions / cycles:,.0f} instructions per cycle on the "
              f"connection thread ({cycles:.0f} cycles counted)", flush=True)


if __name__ == "__main__":
    main()
