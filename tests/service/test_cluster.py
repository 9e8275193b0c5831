"""The service through HTTP with REDIS_CLUSTER=true, on a local 3-master cluster: its client finds the
cluster's nodes, each execution's keys live in one slot, executions spread over every master, timers
fire through the scheduled function, lost scripts are loaded again, and a dead cluster is a 503.
(The store tests in test_redemption.py and test_timers.py also run on the cluster: their ``store_redis``
fixture gives a plain server, then the cluster.)"""
from __future__ import annotations

import json
import os
import signal
import time
from collections import defaultdict

import certifi
import pytest
from chalice.test import Client
from redis.cluster import RedisCluster

from app import app
from chalicelib.api import runtime as web
from chalicelib.store import connection as redis_connection
from chalicelib.asl.clock import SystemClock
from chalicelib.config import settings

from ..conftest import ROOT
from ..redis_cluster import cluster_client
from ..redis_servers import free_port

WAIT_AN_HOUR = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "Next": "After"},
                                               "After": {"Type": "Pass", "Result": "woke", "End": True}}}
# A Map whose every iteration waits: one execution with many continuations and a long history.
FAN_OUT = {"StartAt": "Fan", "States": {"Fan": {"Type": "Map", "End": True, "ItemProcessor": {
    "StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": "module:suspend", "End": True}}}}}}
APPROVAL_INPUT = {"item": "laptop", "requester": "ann", "reason": "broken"}


@pytest.fixture
def cluster(cluster_url):
    client = cluster_client(cluster_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def api(cluster, cluster_url, monkeypatch):
    monkeypatch.setenv("REDIS_URL", cluster_url)
    monkeypatch.setenv("REDIS_CLUSTER", "true")
    with Client(app, stage_name="dev", project_dir=ROOT) as client:
        yield client


def post(api, path: str, body):
    response = api.http.post(path, headers={"Content-Type": "application/json"}, body=json.dumps(body))
    return response.status_code, json.loads(response.body)


def get(api, path: str):
    response = api.http.get(path)
    return response.status_code, json.loads(response.body)


def start(api, body: dict) -> dict:
    status, document = post(api, "/executions", body)
    assert status == 200, document
    return document


def test_incsquare_suspends_resumes_and_describes_itself_on_a_cluster(api):
    document = start(api, {"stateMachine": "incsquare", "input": {"value": 6}})
    [waiting] = document["continuations"]
    assert (document["status"], waiting["parameters"]) == ("SUSPENDED", {"value": 49})
    assert get(api, f"/continuations/{waiting['id']}")[1]["status"] == "waiting"
    status, done = post(api, f"/continuations/{waiting['id']}", {"note": "hi"})
    assert (status, done["status"], done["output"]) == (200, "SUCCEEDED", {"value": 50, "note": "hi"})
    status, again = post(api, f"/continuations/{waiting['id']}", {})
    assert (status, again["error"]) == (409, "ContinuationAlreadyRedeemed")
    status, described = get(api, f"/executions/{document['executionId']}")
    types = [event["type"] for event in described["history"]]
    assert (status, described["status"], types[0], types[-1]) == (200, "SUCCEEDED", "ExecutionStarted",
                                                                   "ExecutionSucceeded")
    assert types.count("ExecutionResumed") == 1
    assert get(api, f"/continuations/{waiting['id']}")[1]["status"] == "redeemed"


def test_the_service_runs_on_a_redis_cluster(api, cluster_url):
    status, document = post(api, "/executions", {"stateMachine": "parallel-approval", "input": {"n": 1}})
    assert (status, document["status"]) == (200, "SUSPENDED")
    first, second = document["continuations"]
    assert post(api, f"/continuations/{first['id']}", {"decision": "approve"})[1]["status"] == "SUSPENDED"
    assert post(api, f"/continuations/{first['id']}", {})[1]["error"] == "ContinuationAlreadyRedeemed"
    done = post(api, f"/continuations/{second['id']}", {"decision": "approve"})[1]
    assert done["status"] == "SUCCEEDED"
    assert get(api, f"/executions/{document['executionId']}")[1]["output"]["outcome"] == "approved"

    status, other = post(api, "/executions", {"stateMachine": "incsquare", "input": {"value": 6}})
    assert api.http.delete(f"/executions/{other['executionId']}").status_code == 200
    assert post(api, f"/continuations/{other['continuations'][0]['id']}", {})[1]["error"] == "ContinuationExpired"

    cluster = RedisCluster.from_url(cluster_url)
    keys = [k.decode() for k in cluster.scan_iter("asl:*")
            if not k.startswith((b"asl:d:", b"asl:{ix}:")) and k != b"asl:timers"]
    slots: dict[str, set[int]] = {}
    for key in keys:
        slots.setdefault(key.split("}")[0], set()).add(cluster.keyslot(key))
    assert len(slots) == 2 and all(len(s) == 1 for s in slots.values())  # two executions, one slot each
    assert len({cluster.keyslot(k) for k in keys}) == 2


def test_executions_spread_over_every_master_each_in_one_slot(api, cluster):
    """30 executions (one with a history long enough for its own list key): every master holds some,
    the server's CLUSTER KEYSLOT puts all keys of one execution in one slot, and every continuation
    on every node is redeemed once."""
    documents = [start(api, {"stateMachine": "incsquare", "input": {"value": i}}) for i in range(21)]
    documents += [start(api, {"stateMachine": "parallel-approval", "input": {"n": i}}) for i in range(8)]
    documents.append(start(api, {"definition": FAN_OUT, "input": list(range(30))}))
    by_execution: dict[str, set[tuple[str, int]]] = defaultdict(set)
    masters = cluster.get_primaries()
    assert len(masters) == 3
    for node in masters:
        for key in cluster.get_redis_connection(node).scan_iter("asl:*"):
            if key.startswith((b"asl:d:", b"asl:{ix}:")) or key == b"asl:timers":
                continue
            tag = key.decode().split("}")[0] + "}"
            by_execution[tag].add((node.name, cluster.cluster_keyslot(key.decode())))
    tags = {"asl:{" + d["executionId"][:4] + "}" for d in documents}
    assert set(by_execution) == tags
    assert all(len(places) == 1 for places in by_execution.values()), by_execution
    assert {node for places in by_execution.values() for node, _ in places} == {n.name for n in masters}
    fan_tag = "{" + documents[-1]["executionId"][:4] + "}"
    assert any(b":h:" in k for k in cluster.scan_iter(f"asl:{fan_tag}:*"))  # the spilled history

    for document in documents:
        for waiting in document["continuations"]:
            status, answer = post(api, f"/continuations/{waiting['id']}", {"decision": "approve"})
            assert status == 200, answer
        status, final = get(api, f"/executions/{document['executionId']}")
        assert final["status"] == "SUCCEEDED"
        assert [e["type"] for e in final["history"]].count("ExecutionResumed") == len(document["continuations"])
    assert len(documents[-1]["continuations"]) == 30


def test_timers_fire_through_the_scheduled_function_on_a_cluster(api, monkeypatch):
    """``fire_timers`` (what the schedule runs) finds the cluster from the stage settings: a Wait of an
    hour and the approval's one-week timeout fire on time, never early, and only once."""
    now = [time.time()]
    monkeypatch.setattr(SystemClock, "now", lambda self: now[0])
    waiting = start(api, {"definition": WAIT_AN_HOUR})
    approval = start(api, {"stateMachine": "approval", "input": APPROVAL_INPUT})
    assert waiting["status"] == approval["status"] == "SUSPENDED" and waiting["timers"]
    now[0] += 3599
    assert web.fire_timers()["fired"] == 0
    assert get(api, f"/executions/{waiting['executionId']}")[1]["status"] == "SUSPENDED"
    now[0] += 1
    assert web.fire_timers()["fired"] == 1
    woke = get(api, f"/executions/{waiting['executionId']}")[1]
    assert (woke["status"], woke["output"]) == ("SUCCEEDED", "woke")
    now[0] += 7 * 86400
    assert web.fire_timers()["fired"] == 1
    expired = get(api, f"/executions/{approval['executionId']}")[1]
    assert (expired["status"], expired["output"]["reason"]) == ("SUCCEEDED", "no decision in time")
    assert post(api, f"/continuations/{approval['continuations'][0]['id']}", {"decision": "approve"})[0] == 410
    assert web.fire_timers()["fired"] == 0


@pytest.mark.parametrize("where", ["every master", "one master"])
def test_scripts_lost_by_the_cluster_are_loaded_again(api, cluster, where):
    """After SCRIPT FLUSH (a restarted or newly promoted node has no scripts), start, redeem and abort work."""
    before = [start(api, {"stateMachine": "incsquare", "input": {"value": i}}) for i in range(6)]
    masters = cluster.get_primaries() if where == "every master" else cluster.get_primaries()[:1]
    for node in masters:
        cluster.get_redis_connection(node).script_flush()
    for document in before[:3]:
        status, done = post(api, f"/continuations/{document['continuations'][0]['id']}", {})
        assert (status, done["status"]) == (200, "SUCCEEDED")
    assert api.http.delete(f"/executions/{before[3]['executionId']}").status_code == 200
    for node in masters:
        cluster.get_redis_connection(node).script_flush()
    after = [start(api, {"stateMachine": "parallel-approval", "input": {"n": i}}) for i in range(6)]
    assert all(d["status"] == "SUSPENDED" for d in after)
    for document in after:
        for waiting in document["continuations"]:
            assert post(api, f"/continuations/{waiting['id']}", {"decision": "approve"})[0] == 200


def test_the_cluster_client_gets_the_plain_clients_timeouts_and_tls(monkeypatch):
    """``rediss://`` with REDIS_CLUSTER: TLS verified against certifi's bundle, and the socket timeouts."""
    made = {}

    def from_url(url, **options):
        made.update(url=url, **options)
        return object()

    monkeypatch.setattr(RedisCluster, "from_url", staticmethod(from_url))
    monkeypatch.setenv("REDIS_CLUSTER", "true")
    monkeypatch.setenv("REDIS_SOCKET_TIMEOUT", "0.7")
    url = f"rediss://:token@cluster-config-endpoint.invalid:{free_port()}"
    monkeypatch.setenv("REDIS_URL", url)
    monkeypatch.setattr(redis_connection, "_clients", {})
    redis_connection.get_redis(settings())
    assert made == {"url": url, "socket_timeout": 0.7, "socket_connect_timeout": 0.7, "health_check_interval": 30,
                    "ssl_ca_certs": certifi.where(), "ssl_cert_reqs": "required"}


def _node_pids(cluster: RedisCluster) -> list[int]:
    return [cluster.get_redis_connection(node).info("server")["process_id"] for node in cluster.get_primaries()]


def test_an_unreachable_or_hung_cluster_is_503_and_loses_nothing(api, cluster, cluster_url, monkeypatch):
    """As with a single server: 503 StoreUnavailable (not a 500), soon; then the same IDs work."""
    document = start(api, {"stateMachine": "incsquare", "input": {"value": 6}})
    ident = document["continuations"][0]["id"]
    monkeypatch.setenv("REDIS_SOCKET_TIMEOUT", "0.3")
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    status, error = post(api, "/executions", {"stateMachine": "incsquare", "input": {"value": 1}})
    assert (status, error["error"]) == (503, "StoreUnavailable")
    # Another node's address is a new client (created with the short timeout) of the same cluster.
    other = next(node for node in cluster.get_primaries() if f":{node.port}/" not in cluster_url)
    monkeypatch.setenv("REDIS_URL", f"redis://{other.host}:{other.port}/0")
    pids = _node_pids(cluster)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        for method, path, body in (("post", "/executions", {"stateMachine": "incsquare", "input": {"value": 1}}),
                                   ("post", f"/continuations/{ident}", {}), ("get", f"/continuations/{ident}", None)):
            began = time.monotonic()
            status, error = post(api, path, body) if method == "post" else get(api, path)
            assert (status, error["error"]) == (503, "StoreUnavailable"), (path, error)
            assert time.monotonic() - began < 4, path
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    status, done = post(api, f"/continuations/{ident}", {"after": "the outage"})
    assert (status, done["output"]) == (200, {"value": 50, "after": "the outage"})
