"""The record format: what was stored by an earlier version stays readable."""
from __future__ import annotations

import base64

from chalicelib.store import unpack_record


# Written by the first record format; a change that cannot read it would strand stored executions.
FORMAT_1_RECORD = "N3wxw2o1qEh0dXP3IGQNsBzPAVUaZqDcAyqS0wwMUlCL4bz8PGCU6hjqmcaCHAUu6JFzviM4k1KSsSEmoISpEqigriU+TwOjAAA="


def test_records_written_in_format_1_stay_readable():
    record = unpack_record("abcdEFGH", base64.b64decode(FORMAT_1_RECORD))
    assert (record.version, record.status, record.definition_hash) == (7, "SUSPENDED", "f00d")
    assert record.document == {"executionId": "abcdEFGH", "status": "SUSPENDED", "input": {"value": 6}}
    assert record.snapshot["root"]["wait"]["parameters"] == {"q": 1}
    assert (record.open, record.history) == ({"p1": ["nonce", 1.5]}, [{"id": 1, "type": "ExecutionStarted"}])
