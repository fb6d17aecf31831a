#!/usr/bin/env python3
"""Where a benchmark run's latency went, stage by stage, read from the store it left behind.

    python3 Benchmarks/stages.py [/tmp/mq-bench-data/mediaqueue.sqlite]

For a run of ../shared/bench (whose UserData ends in the producer's publish time, ns since the
epoch) on the SQLite store: the percentiles of each step of every job's path, in milliseconds.

  publish -> stored     producer's publish to the job's CreationTime: broker, intake batch and linger
  stored -> claimed     CreationTime to StartTime (taken as the claim begins, before its commit)
  claimed -> ended      the claim's commit, the start, the worker, until EndTime
  ended -> queued       completion batch linger and the finish transaction (the outbox row's created_at)
  queued -> recorded    relay publish, broker confirm, record linger and write (delivered_at)

The store keeps milliseconds, so steps under 1 ms read as 0 or 1. The subscriber receives an event
between its confirm and its recording; the harness's own p50/p99 are the reference for the total.
"""
import re
import sqlite3
import sys

STEPS = ["publish -> stored", "stored -> claimed", "claimed -> ended", "ended -> queued", "queued -> recorded", "publish -> recorded"]


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "/tmp/mq-bench-data/mediaqueue.sqlite"
    database = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    rows = database.execute(
        """SELECT j.operation, j.creation_time, j.start_time, j.end_time, o.created_at, o.delivered_at
           FROM jobs j JOIN outbox o ON o.job_id = j.id WHERE o.delivered_at IS NOT NULL"""
    ).fetchall()
    steps = {name: [] for name in STEPS}
    for operation, created, started, ended, queued, recorded in rows:
        published = re.search(r":(\d+)</UserData>", operation)
        if not published:
            continue
        published_ms = int(published.group(1)) / 1e6
        for name, value in zip(STEPS, [created - published_ms, started - created, ended - started, queued - ended, recorded - queued, recorded - published_ms]):
            steps[name].append(value)
    if not steps[STEPS[0]]:
        sys.exit(f"{path}: no delivered job carries the harness's publish time in its UserData")
    print(f"{len(steps[STEPS[0]])} jobs")
    for name, values in steps.items():
        print(f"{name:22s} p50 {percentile(values, 0.5):7.1f}  p90 {percentile(values, 0.9):7.1f}  p99 {percentile(values, 0.99):7.1f}  max {max(values):7.1f} ms")


if __name__ == "__main__":
    main()
