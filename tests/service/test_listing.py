"""Listing executions from the index, on a single Redis server and on a Redis Cluster (``store_redis``):
filters, order, pages, status changes, expiry, and an index that heals what a crash left behind."""
from __future__ import annotations

import pytest

from chalicelib.approvals import make_service
from chalicelib.asl import VirtualClock
from chalicelib.config import settings
from chalicelib.service import ServiceError, catalog
from chalicelib.store import Store

START = 1_800_000_000.0  # 2027-01-15T08:00:00Z
INLINE = {"StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": "module:suspend", "End": True}}}
APPROVAL = {"item": "desk", "requester": "mia", "reason": "back pain"}


@pytest.fixture
def clock():
    return VirtualClock(START)


@pytest.fixture
def store(store_redis):
    return Store(store_redis)


@pytest.fixture
def service(store, clock):
    return make_service(settings(), store, clock=clock, base_url="http://test")


def start(service, machine: str | None = "incsquare", input=None) -> dict:
    definition = catalog.load_text(machine) if machine else INLINE
    return service.start(definition, {"value": 6} if input is None else input, state_machine=machine,
                         trusted=True)


def ids(page: dict) -> list[str]:
    return [e["executionId"] for e in page["executions"]]


def every_page(service, **filters) -> list[dict]:
    """All pages of a listing, following nextToken."""
    pages = [service.list_executions(**filters)]
    while pages[-1]["nextToken"] is not None:
        pages.append(service.list_executions(next_token=pages[-1]["nextToken"], **filters))
    return pages


def index_keys(store_redis) -> list[str]:
    return sorted(k.decode() for k in store_redis.scan_iter("asl:{ix}:*"))


def test_newest_first_with_the_fields_of_a_list(service, clock):
    started = []
    for machine in ("incsquare", "approval", None, "incsquare"):
        started.append(start(service, machine, APPROVAL if machine == "approval" else None))
        clock.advance(1.5)
    page = service.list_executions()
    assert ids(page) == [d["executionId"] for d in reversed(started)]
    assert page["nextToken"] is None
    assert page["executions"][1] == {
        "executionId": started[2]["executionId"], "name": started[2]["executionId"], "stateMachine": None,
        "status": "SUSPENDED", "startDate": "2027-01-15T08:00:03.000Z", "stopDate": None}
    assert page["executions"][3]["startDate"] == "2027-01-15T08:00:00.000Z"


def test_filters_by_state_machine_status_and_both(service, clock):
    squares = [start(service, "incsquare", {"value": i}) for i in range(3)]
    approvals = [start(service, "approval", APPROVAL) for _ in range(2)]
    clock.advance(10)
    done = service.redeem(squares[1]["continuations"][0]["id"], result={})
    assert done["status"] == "SUCCEEDED"
    stopped = service.abort(approvals[0]["executionId"])
    assert stopped["status"] == "ABORTED"

    def listed(**filters):
        return set(ids(service.list_executions(**filters)))

    assert listed(state_machine="incsquare") == {d["executionId"] for d in squares}
    assert listed(state_machine="incsquare.json") == listed(state_machine="incsquare")
    assert listed(state_machine="approval") == {d["executionId"] for d in approvals}
    assert listed(status="SUSPENDED") == {squares[0]["executionId"], squares[2]["executionId"],
                                          approvals[1]["executionId"]}
    assert listed(status="SUCCEEDED") == {squares[1]["executionId"]}
    assert listed(state_machine="approval", status="ABORTED") == {approvals[0]["executionId"]}
    assert listed(state_machine="approval", status="SUCCEEDED") == set()
    assert listed(state_machine="no-such-machine") == set()
    [ended] = service.list_executions(status="SUCCEEDED")["executions"]
    assert (ended["status"], ended["stopDate"]) == ("SUCCEEDED", "2027-01-15T08:00:10.000Z")


def test_a_status_change_moves_the_execution_from_one_list_to_the_other(service, clock):
    document = start(service)
    assert ids(service.list_executions(status="SUSPENDED")) == [document["executionId"]]
    service.redeem(document["continuations"][0]["id"], result={})
    assert ids(service.list_executions(status="SUSPENDED")) == []
    assert ids(service.list_executions(status="SUCCEEDED")) == [document["executionId"]]
    assert service.list_executions()["executions"][0]["status"] == "SUCCEEDED"


@pytest.mark.parametrize("same_moment", [False, True])
def test_pages_follow_each_other_without_gaps_or_repeats(service, clock, same_moment):
    """25 executions, 10 a page; with the clock still, all start in the same millisecond (ID breaks ties)."""
    started = []
    for i in range(25):
        started.append(start(service, "incsquare" if i % 3 else None, {"value": i}))
        if not same_moment:
            clock.advance(0.25)
    pages = every_page(service, limit=10)
    assert [len(p["executions"]) for p in pages] == [10, 10, 5]
    listed = [e for p in pages for e in p["executions"]]
    assert sorted(ids({"executions": listed})) == sorted(d["executionId"] for d in started)
    order = [(e["startDate"], e["executionId"]) for e in listed]
    assert order == sorted(order, reverse=True)
    if not same_moment:
        assert ids({"executions": listed}) == [d["executionId"] for d in reversed(started)]
    squares = [e for p in every_page(service, state_machine="incsquare", limit=4) for e in p["executions"]]
    assert [e["executionId"] for e in squares] == [e["executionId"] for e in listed
                                                   if e["stateMachine"] == "incsquare"]


def test_a_page_is_right_when_executions_change_between_pages(service, clock):
    started = []
    for i in range(6):
        started.append(start(service, input={"value": i}))
        clock.advance(1)
    first = service.list_executions(status="SUSPENDED", limit=3)
    assert ids(first) == [d["executionId"] for d in started[:2:-1]]
    service.redeem(started[2]["continuations"][0]["id"], result={})  # the last one of the first page
    service.redeem(started[1]["continuations"][0]["id"], result={})  # one of the next page
    rest = service.list_executions(status="SUSPENDED", limit=3, next_token=first["nextToken"])
    assert ids(rest) == [started[0]["executionId"]]


def test_limits_and_tokens_are_checked(service):
    start(service)
    for filters, word in ((dict(limit=0), "limit"), (dict(limit=1001), "limit"), (dict(limit="5"), "limit"),
                          (dict(status="DONE"), "status"), (dict(status="suspended"), "status"),
                          (dict(state_machine="../x"), "stateMachine"), (dict(state_machine="a b"), "stateMachine"),
                          (dict(next_token="nonsense!"), "nextToken"), (dict(next_token="WzEsMl0"), "nextToken"),
                          (dict(next_token="e30"), "nextToken")):
        with pytest.raises(ServiceError) as caught:
            service.list_executions(**filters)
        assert (caught.value.status, caught.value.code) == (400, "InvalidRequest")
        assert word in caught.value.message
    assert len(service.list_executions(limit=1000)["executions"]) == 1


def pass_time(clock, store_redis, seconds: float) -> None:
    """Move the clock, and Redis's expiry with it: every TTL is that much shorter, and the keys whose TTL
    runs out are gone, as they would be after ``seconds`` on Redis's own clock."""
    clock.advance(seconds)
    for key in list(store_redis.scan_iter("*")):
        left = store_redis.pttl(key)
        if left > seconds * 1000:
            store_redis.pexpire(key, int(left - seconds * 1000))
        elif left >= 0:
            store_redis.delete(key)


def kept_seconds() -> int:
    """How long a suspended incsquare execution is kept: its continuation's day, then the retention."""
    return 86400 + settings().retention_seconds


def test_expired_executions_leave_the_index(service, clock, store_redis):
    """Kept until the last deadline plus RETENTION_SECONDS; after that neither listed nor held in the index."""
    retention = settings().retention_seconds
    finished = start(service)
    service.redeem(finished["continuations"][0]["id"], result={})  # kept for the retention after now
    waiting = start(service)  # kept for its continuation's day, then the retention
    pass_time(clock, store_redis, retention + 1)
    assert store_redis.zcard("asl:{ix}:l:SUCCEEDED:incsquare") == 1  # its records are gone, its entry not yet
    assert ids(service.list_executions()) == [waiting["executionId"]]
    assert store_redis.zcard("asl:{ix}:l:SUCCEEDED:incsquare") == 0  # the page that read it dropped it
    pass_time(clock, store_redis, 86400)
    assert service.list_executions() == {"executions": [], "nextToken": None}
    assert index_keys(store_redis) == []


def test_the_ticker_sweeps_out_expired_executions_nobody_lists(service, clock, store_redis):
    """Each tick drops the entries of a slice of the index whose records are gone."""
    for i in range(30):
        start(service, input={"value": i})
    pass_time(clock, store_redis, kept_seconds() / 2)
    later = [start(service, input={"value": i})["executionId"] for i in range(3)]
    pass_time(clock, store_redis, kept_seconds() / 2 + 1)  # the first 30 are gone, the index's set is not
    assert store_redis.zcard("asl:{ix}:l:SUSPENDED:incsquare") == 33
    assert service.tick()["swept"] == 30
    assert sorted(k.decode() for k in store_redis.zrange("asl:{ix}:l:SUSPENDED:incsquare", 0, -1)) == sorted(later)
    assert service.tick()["swept"] == 0
    assert sorted(ids(service.list_executions())) == sorted(later)


def test_the_sweep_goes_over_every_set_a_slice_at_a_time(service, store, clock, store_redis):
    """Slices of about ``count`` entries, set after set (each status of each state machine), from where the
    last one stopped: a large set is swept over several slices, and every set is reached."""
    expiring = [start(service, input={"value": i}) for i in range(300)]
    for document in expiring[:20]:
        service.redeem(document["continuations"][0]["id"], result={})
    expiring += [start(service, None, {"n": i}) for i in range(5)]
    pass_time(clock, store_redis, kept_seconds() / 2)
    kept = [start(service, machine)["executionId"] for machine in ("incsquare", None)]
    pass_time(clock, store_redis, kept_seconds() / 2 + 1)
    assert store_redis.exists(*(store.execution_key(d["executionId"]) for d in expiring)) == 0
    dropped = []
    for _ in range(40):
        dropped.append(store.sweep_index(clock.now(), count=50))
    assert max(dropped) <= 2 * 50 and sum(dropped) == len(expiring)
    listed = [k.decode() for key in store_redis.scan_iter("asl:{ix}:l:*") for k in store_redis.zrange(key, 0, -1)]
    assert sorted(listed) == sorted(kept)


def test_an_index_written_with_an_expiry_set_is_read_and_removed(service, store, clock, store_redis):
    """Indexes written before kept ``asl:{ix}:exp`` ("<id>|<machine>" scored by expiry): commits take 10 of
    its entries and pages 100, forgetting those expired, until it is gone."""
    listed = [start(service, input={"value": i}) for i in range(3)]
    expiry = clock.now() + kept_seconds()
    old = {f"{d['executionId']}|incsquare": expiry for d in listed}
    old.update({f"old{i:02d}AAAAAAAAAAAAAAAA|incsquare": clock.now() - 1 for i in range(20)})
    store_redis.zadd("asl:{ix}:l:SUCCEEDED:incsquare", {f"old{i:02d}AAAAAAAAAAAAAAAA": 1 for i in range(20)})
    store_redis.zadd("asl:{ix}:exp", old)
    store_redis.expire("asl:{ix}:exp", kept_seconds())
    store_redis.expire("asl:{ix}:l:SUCCEEDED:incsquare", kept_seconds())
    start(service, input={"value": 9})
    assert store_redis.zcard("asl:{ix}:exp") == 13
    assert store_redis.zcard("asl:{ix}:l:SUCCEEDED:incsquare") == 10  # the 10 taken had expired
    assert len(service.list_executions(status="SUSPENDED")["executions"]) == 4
    assert not store_redis.exists("asl:{ix}:exp", "asl:{ix}:l:SUCCEEDED:incsquare")


def test_every_index_key_expires_no_earlier_than_its_newest_entry(service, store_redis):
    start(service)
    keys = index_keys(store_redis)
    assert keys == ["asl:{ix}:l:SUSPENDED:incsquare", "asl:{ix}:machines"]
    ttl = kept_seconds()
    assert all(ttl - 5 <= store_redis.ttl(k) <= ttl for k in keys)
    start(service, None)  # an inline definition, kept as long
    assert ttl - 5 <= store_redis.ttl("asl:{ix}:l:SUSPENDED:") <= ttl


def test_reading_heals_entries_whose_execution_is_gone_or_has_changed(service, store, store_redis, monkeypatch):
    """What a crash between the commit and the index's change leaves (on a Cluster they are two steps;
    made here by hand on both): a listed execution whose record is gone, or whose status is not the listed one."""
    gone, changed, kept = (start(service, input={"value": i}) for i in range(3))
    store_redis.delete(store.execution_key(gone["executionId"]))
    cell = "asl:{ix}:l:SUSPENDED:incsquare"
    score = store_redis.zscore(cell, changed["executionId"])
    service.redeem(changed["continuations"][0]["id"], result={})
    store_redis.zrem("asl:{ix}:l:SUCCEEDED:incsquare", changed["executionId"])
    store_redis.zadd(cell, {changed["executionId"]: score})  # still listed as SUSPENDED
    ttl_of_index = store_redis.ttl(cell)
    heals = []
    index = store._index
    monkeypatch.setattr(store, "_index", lambda **call: heals.append(call["args"][1]) or index(**call))
    assert ids(service.list_executions(status="SUSPENDED")) == [kept["executionId"]]
    assert heals == ["heal"]  # both changes in one script call
    assert store_redis.zrange(cell, 0, -1) == [kept["executionId"].encode()]
    assert ids(service.list_executions(status="SUCCEEDED")) == [changed["executionId"]]
    assert ttl_of_index <= store_redis.ttl("asl:{ix}:l:SUCCEEDED:incsquare")


def test_on_a_cluster_the_index_changes_right_after_the_commit(service, store, store_redis, monkeypatch):
    """A single server changes it in the commit script; a Cluster (another slot) in a script of its own
    after the commit: if that never happens, reading shows the execution's real status."""
    document = start(service)
    if not store.cluster:
        monkeypatch.setattr(store, "_put_in_index", lambda *a: pytest.fail("a single server needs no second step"))
        service.redeem(document["continuations"][0]["id"], result={})
        assert ids(service.list_executions(status="SUCCEEDED")) == [document["executionId"]]
        return
    monkeypatch.setattr(store, "_put_in_index", lambda *a: None)  # the process died after its commit
    service.redeem(document["continuations"][0]["id"], result={})
    assert ids(service.list_executions(status="SUSPENDED")) == []
    monkeypatch.undo()
    assert service.list_executions()["executions"][0]["status"] == "SUCCEEDED"
    assert ids(service.list_executions(status="SUCCEEDED")) == [document["executionId"]]
