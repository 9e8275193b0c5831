"""The load test's short form: worker processes, duplicate redemptions, parallel branches (see bench/load.py)."""
from __future__ import annotations

from bench.load import run_load

from .redis_servers import RedisServer


def test_many_processes_lose_nothing_and_resume_nothing_twice():
    with RedisServer() as server:  # its own server: the check reads every key in it
        report = run_load(server.url, processes=4, executions=3000)
    print("\n".join(report.lines()))
    assert report.failures == []
    assert report.executions == 3000 and report.continuations == 4000  # a third are parallel: two questions
    assert report.outcomes == {"ok": 4000, "ContinuationAlreadyRedeemed": 4000}
