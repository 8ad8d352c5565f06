#!/usr/bin/env python3
"""Prints README's performance table from kanband-bench result files.

    bench/table.py AFTER.json                # one column: the medians of that invocation
    bench/table.py BEFORE.json AFTER.json    # before and after, row by row

Each cell is a row's median with its runs in brackets; rows are matched by scenario.
"""

import json
import sys


def load(path):
    with open(path) as f:
        result = json.load(f)
    return {row["scenario"]: row for row in result["rows"]}


def number(value):
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def cell(row):
    if row is None:
        return "-"
    runs = ", ".join(number(r) for r in row["runs"])
    return f"{number(row['value'])} {row['unit']} ({runs})"


def target(row):
    t = row.get("target") or {}
    if "at_least" in t:
        return f">= {number(t['at_least'])}"
    if "at_most" in t:
        return f"<= {number(t['at_most'])}"
    return "reference"


def main(paths):
    tables = [load(p) for p in paths]
    last = tables[-1]
    names = list(last) + [s for t in tables[:-1] for s in t if s not in last]
    heads = ["before", "after"] if len(tables) == 2 else ["median (runs)"]
    print("| figure | " + " | ".join(heads) + " | target | result |")
    print("|---|" + "---|" * len(heads) + "---|---|")
    for name in names:
        row = last.get(name) or next(t[name] for t in tables if name in t)
        cells = [cell(t.get(name)) for t in tables]
        result = last[name]["result"] if name in last else "-"
        print(f"| {row['figure']} | " + " | ".join(cells) + f" | {target(row)} | {result} |")


if __name__ == "__main__":
    if not 1 <= len(sys.argv) - 1 <= 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
