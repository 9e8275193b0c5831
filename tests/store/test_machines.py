"""The state machine registry's keys and scripts, on a single server and on a Redis Cluster."""
from __future__ import annotations

from chalicelib.store.machines import Machines


def test_create_is_first_come_and_the_rest_follows(store_redis):
    machines = Machines(store_redis)
    assert machines.create("b", {"definition": "{}", "type": "STANDARD"}, {"team": "ops"}) is None
    assert machines.create("b", {"definition": "other", "type": "EXPRESS"}, {}) == \
        {"definition": "{}", "type": "STANDARD"}
    assert machines.create("a", {"definition": "{}"}, {}) is None
    assert machines.names(None, 10) == ["a", "b"] and machines.names("a", 10) == ["b"]
    assert machines.names(None, 1) == ["a"]
    assert machines.update("b", {"definition": "new"}) and machines.get("b")["definition"] == "new"
    assert not machines.update("missing", {"definition": "x"}) and machines.get("missing") is None
    assert machines.tags("b") == {"team": "ops"}
    assert machines.tag("b", {"env": "dev"}, shipped=False) and machines.tags("b") == {"team": "ops", "env": "dev"}
    assert not machines.tag("missing", {"x": "y"}, shipped=False) and machines.tags("missing") == {}
    assert machines.tag("shipped-one", {"x": "y"}, shipped=True) and machines.tags("shipped-one") == {"x": "y"}
    machines.untag("b", ["team", "absent"])
    assert machines.tags("b") == {"env": "dev"}
    assert machines.delete("b") and not machines.delete("b")
    assert machines.get("b") is None and machines.tags("b") == {} and machines.names(None, 10) == ["a"]
    assert store_redis.ttl(machines.key("a")) == -1  # registered machines live until deleted
