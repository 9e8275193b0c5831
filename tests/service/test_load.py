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


def test_retries_after_lost_responses_make_no_duplicate_and_lose_no_answer():
    """Clients drop every start and redemption before reading its answer and send it again, over HTTP to
    two chalice local servers, one of them SIGKILLed about every second (bench/lost_responses.py)."""
    from bench.lost_responses import run_lost_responses

    with RedisServer() as server:
        report = run_lost_responses(server.url, executions=300, servers=2, clients=6, kill_every=1.0)
    print("\n".join(report.lines()))
    assert report.failures == []
    assert (report.duplicates, report.lost, report.double) == (0, 0, 0)
    assert report.continuations == 400  # incsquare and approval ask one question, parallel-approval two
    assert report.dropped == report.executions + report.continuations  # every request lost its answer once
    assert sum(report.starts.values()) == 300 and sum(report.redemptions.values()) == 400
    # the dropped requests did their work: most retries found the execution started, the answer applied
    assert report.starts["alreadyExisted"] > 0 and report.redemptions["replay"] > 0
    assert report.kills >= 1
    assert report.emails + report.unsent == report.approvals == 100
