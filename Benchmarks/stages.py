#!/usr/bin/env python3
"""Where a benchmark run's latency went, stage by stage, read from the store it left behind.

    python3 Benchmarks/stages.py [--windows MS] [/tmp/mq-bench-data/mediaqueue.sqlite]

For a run of ../shared/bench (whose UserData ends in the producer's publish time, ns since the
epoch) on the SQLite store: the percentiles of each step of every job's path, in milliseconds.

  publish -> stored     producer's publish to the job's CreationTime: broker, intake batch and linger
  stored -> claimed     CreationTime to StartTime (taken as the claim begins, before its commit)
  claimed -> ended      the claim's commit, the start, the worker, until EndTime
  ended -> queued       completion batch linger and the finish transaction (the outbox row's created_at)
  queued -> recorded    relay publish, broker confirm, record linger and write (delivered_at)

The store keeps milliseconds, so steps under 1 ms read as 0 or 1. The subscriber receives an event
between its confirm and its recording; the harness's own p50/p99 are the reference for the total.

--windows MS also lists the run in windows of MS milliseconds of publish time whose slowest job
took longer than the run's p99: how many jobs the producer published in the window (a paced
producer that falls behind catches up in bursts) and that slowest job's steps. Slow windows with
a burst point at the producer; slow windows with every step slow at once, at the whole process
waiting (for the CPU, or a checkpoint).
"""
import argparse
import collections
import re
import sqlite3
import sys

STEPS = ["publish -> stored", "stored -> claimed", "claimed -> ended", "ended -> queued", "queued -> recorded", "publish -> recorded"]


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def job_steps(path):
    """Each delivered job's (publish time in ms, [its steps in STEPS order])."""
    database = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    rows = database.execute(
        """SELECT j.operation, j.creation_time, j.start_time, j.end_time, o.created_at, o.delivered_at
           FROM jobs j JOIN outbox o ON o.job_id = j.id WHERE o.delivered_at IS NOT NULL"""
    ).fetchall()
    for operation, created, started, ended, queued, recorded in rows:
        published = re.search(r":(\d+)</UserData>", operation)
        if not published:
            continue
        published_ms = int(published.group(1)) / 1e6
        yield published_ms, [created - published_ms, started - created, ended - started, queued - ended, recorded - queued, recorded - published_ms]


def print_windows(jobs, window_ms, slower_than):
    windows = collections.defaultdict(list)
    for published, steps in jobs:
        windows[int(published // window_ms)].append(steps)
    first = min(windows)
    print(f"windows of {window_ms} ms whose slowest job took over {slower_than:.1f} ms (the p99):")
    print("  start s  published  slowest   " + "  ".join(name.split(" -> ")[1] for name in STEPS[:5]))
    for index in sorted(windows):
        slowest = max(windows[index], key=lambda steps: steps[5])
        if slowest[5] > slower_than:
            cells = "  ".join(f"{value:{len(name.split(' -> ')[1])}.0f}" for value, name in zip(slowest[:5], STEPS[:5]))
            print(f"  {(index - first) * window_ms / 1000:7.2f}  {len(windows[index]):9d}  {slowest[5]:7.1f}   {cells}")


def main():
    parser = argparse.ArgumentParser(description="Per-step latency of a benchmark run, from its store.")
    parser.add_argument("--windows", type=int, metavar="MS", help="also list the slow windows of MS ms of publish time")
    parser.add_argument("path", nargs="?", default="/tmp/mq-bench-data/mediaqueue.sqlite")
    arguments = parser.parse_args()
    jobs = list(job_steps(arguments.path))
    if not jobs:
        sys.exit(f"{arguments.path}: no delivered job carries the harness's publish time in its UserData")
    print(f"{len(jobs)} jobs")
    for index, name in enumerate(STEPS):
        values = [steps[index] for _, steps in jobs]
        print(f"{name:22s} p50 {percentile(values, 0.5):7.1f}  p90 {percentile(values, 0.9):7.1f}  p99 {percentile(values, 0.99):7.1f}  max {max(values):7.1f} ms")
    if arguments.windows:
        print_windows(jobs, arguments.windows, percentile([steps[5] for _, steps in jobs], 0.99))


if __name__ == "__main__":
    main()
