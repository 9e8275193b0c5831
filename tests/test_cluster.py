"""The service through HTTP with REDIS_CLUSTER=true: its client finds the cluster's nodes, and each
execution's keys live in one slot. (The store tests in test_redemption.py and test_timers.py also run
on the cluster: their ``store_redis`` fixture gives a plain server, then the cluster.)"""
from __future__ import annotations

import json

import pytest
from chalice.test import Client
from redis.cluster import RedisCluster

from app import app

from .conftest import ROOT


@pytest.fixture
def api(cluster_url, monkeypatch):
    RedisCluster.from_url(cluster_url).flushdb()
    monkeypatch.setenv("REDIS_URL", cluster_url)
    monkeypatch.setenv("REDIS_CLUSTER", "true")
    with Client(app, stage_name="dev", project_dir=ROOT) as client:
        yield client


def post(api, path: str, body: dict):
    response = api.http.post(path, headers={"Content-Type": "application/json"}, body=json.dumps(body))
    return response.status_code, json.loads(response.body)


def test_the_service_runs_on_a_redis_cluster(api, cluster_url):
    status, document = post(api, "/executions", {"stateMachine": "parallel-approval", "input": {"n": 1}})
    assert (status, document["status"]) == (200, "SUSPENDED")
    first, second = document["continuations"]
    assert post(api, f"/continuations/{first['id']}", {"decision": "approve"})[1]["status"] == "SUSPENDED"
    assert post(api, f"/continuations/{first['id']}", {})[1]["error"] == "ContinuationAlreadyRedeemed"
    done = post(api, f"/continuations/{second['id']}", {"decision": "approve"})[1]
    assert (done["status"], done["output"]["outcome"]) == ("SUCCEEDED", "approved")

    status, other = post(api, "/executions", {"stateMachine": "incsquare", "input": {"value": 6}})
    assert api.http.delete(f"/executions/{other['executionId']}").status_code == 200
    assert post(api, f"/continuations/{other['continuations'][0]['id']}", {})[1]["error"] == "ContinuationExpired"

    cluster = RedisCluster.from_url(cluster_url)
    keys = [k.decode() for k in cluster.scan_iter("asl:*") if not k.startswith(b"asl:d:") and k != b"asl:timers"]
    slots: dict[str, set[int]] = {}
    for key in keys:
        slots.setdefault(key.split("}")[0], set()).add(cluster.keyslot(key))
    assert len(slots) == 2 and all(len(s) == 1 for s in slots.values())  # two executions, one slot each
