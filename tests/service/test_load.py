"""The load test's short form: worker processes, racing duplicate redemptions, parallel branches (bench/load.py)."""
from __future__ import annotations

from bench.load import run_load

from ..redis_servers import RedisServer


def test_many_processes_lose_nothing_and_resume_nothing_twice():
    with RedisServer() as server:  # its own server: the check reads every key in it
        report = run_load(server.url, processes=4, executions=1200)
    print("\n".join(report.lines()))
    assert report.failures == []
    # a third of each machine; parallel-approval asks two questions, the others one
    assert dict(report.machines) == {"incsquare": 400, "approval": 400, "parallel-approval": 400}
    assert report.executions == 1200 and report.continuations == 1600
    assert dict(report.outcomes) == {"ok": 1600, "replay": 1600}
    # the duplicates and the branches really raced, not only one after the other
    assert report.overlapping > 0 and report.branches_overlapping > 0
