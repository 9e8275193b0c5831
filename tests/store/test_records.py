"""The record format: what was stored by an earlier version stays readable."""
from __future__ import annotations

import base64

from chalicelib.store import unpack_record
from chalicelib.store.records import pack_record


# Written by the first record format; a change that cannot read it would strand stored executions.
FORMAT_1_RECORD = "N3wxw2o1qEh0dXP3IGQNsBzPAVUaZqDcAyqS0wwMUlCL4bz8PGCU6hjqmcaCHAUu6JFzviM4k1KSsSEmoISpEqigriU+TwOjAAA="


def test_records_written_in_format_1_stay_readable():
    record = unpack_record("abcdEFGH", base64.b64decode(FORMAT_1_RECORD))
    assert (record.version, record.status, record.definition_hash) == (7, "SUSPENDED", "f00d")
    assert record.document == {"executionId": "abcdEFGH", "status": "SUSPENDED", "input": {"value": 6}}
    assert record.snapshot["root"]["wait"]["parameters"] == {"q": 1}
    assert (record.open, record.history) == ({"p1": ["nonce", 1.5]}, [{"id": 1, "type": "ExecutionStarted"}])


# Written by format 2: sealed task-token markers where the run placed them, and "k", the last
# history event written in format 1 by an execution that began in it.
FORMAT_2_RECORD = ("OHwyw2o1qEh0dXP3IGQNsBzPAVUaZqDcAyqS0wwMUuDFsBGoGM7LzwNGqY6hnmksyFHggh6a81FzsxF6wCiV5Genggq36mpQrIeAeAoF"
                   "RnrFqYk5yLi2FlieoGZfExy5oRZYD2UDM0stAA==")


def test_records_written_in_format_2_stay_readable():
    record = unpack_record("abcdEFGH", base64.b64decode(FORMAT_2_RECORD))
    assert (record.version, record.status, record.definition_hash, record.format) == (8, "SUSPENDED", "f00d", 2)
    assert record.snapshot["root"]["wait"]["parameters"] == {"token": "{{TaskToken p2.sealsealsealseal}}"}
    assert (record.open, record.history, record.legacy_events) == (
        {"p2": ["nonce", 1.5]}, [{"id": 4, "type": "TaskScheduled"}], 3)


def test_a_record_read_in_format_1_says_so_and_is_written_back_in_format_2():
    record = unpack_record("abcdEFGH", base64.b64decode(FORMAT_1_RECORD))
    assert (record.format, record.legacy_events) == (1, 0)
    record.format, record.legacy_events = 2, 1
    again = unpack_record("abcdEFGH", b"8|" + pack_record(record, record.history))
    assert (again.format, again.legacy_events, again.snapshot, again.open) == (2, 1, record.snapshot, record.open)
