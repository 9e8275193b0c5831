"""A Distributed Map's ItemReader and ItemBatcher against a real S3 API (moto's server, tests/s3_server.py).

These run in the interpreter as ``chalicelib.run`` runs it (the built-in resources, the children
inline); the service's map runs read and batch with the same code (tests/service/test_map_runs.py).
"""
from __future__ import annotations

import gzip
import json

import pytest

from chalicelib import run
from chalicelib.asl import validate
from chalicelib.asl import VirtualClock

from ..s3_server import s3, s3_url  # noqa: F401 - fixtures


def distributed(reader: dict | None = None, **fields) -> dict:
    state = {"Type": "Map", "End": True,
             "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                               "StartAt": "Pass", "States": {"Pass": {"Type": "Pass", "End": True}}}}
    if reader is not None:
        state["ItemReader"] = reader
    state.update(fields)
    return {"StartAt": "Map", "States": {"Map": state}}


def get_object(input_type: str, **config) -> dict:
    return {"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket.$": "$.Bucket", "Key.$": "$.Key"},
            "ReaderConfig": {"InputType": input_type, **config}}


def read(s3, definition: dict, key: str, **extra):
    assert validate(definition) == []
    return run(definition, {"Bucket": s3.bucket, "Key": key, **extra}, clock=VirtualClock())


ROWS = [{"id": str(n), "name": f"item {n}", "note": "a, quoted" if n == 2 else ""} for n in range(5)]


def csv_text(header: bool = True, delimiter: str = ",") -> str:
    lines = [delimiter.join(["id", "name", "note"])] if header else []
    for row in ROWS:
        note = f'"{row["note"]}"' if "," in row["note"] else row["note"]
        lines.append(delimiter.join([row["id"], row["name"], note]))
    return "\n".join(lines) + "\n"


def test_json_array(s3):
    items = [{"n": n} for n in range(7)]
    s3.put_object(Bucket=s3.bucket, Key="items.json", Body=json.dumps(items).encode())
    result = read(s3, distributed(get_object("JSON")), "items.json")
    assert result == {"status": "SUCCEEDED", "output": items}


def test_json_that_is_not_an_array_fails_the_reader(s3):
    s3.put_object(Bucket=s3.bucket, Key="object.json", Body=b'{"a": 1}')
    result = read(s3, distributed(get_object("JSON")), "object.json")
    assert (result["status"], result["error"], result["cause"]) == (
        "FAILED", "States.ItemReaderFailed", "Attempting to map over non-iterable node.")


def test_json_lines_with_max_items(s3):
    lines = [{"line": n} for n in range(10)]
    s3.put_object(Bucket=s3.bucket, Key="items.jsonl",
                  Body=("\n".join(json.dumps(line) for line in lines) + "\n\n").encode())
    assert read(s3, distributed(get_object("JSONL")), "items.jsonl")["output"] == lines
    assert read(s3, distributed(get_object("JSONL", MaxItems=3)), "items.jsonl")["output"] == lines[:3]
    by_path = read(s3, distributed(get_object("JSONL", MaxItemsPath="$.max")), "items.jsonl", max=4)
    assert by_path["output"] == lines[:4]


def test_max_items_below_zero_fails_the_reader(s3):
    s3.put_object(Bucket=s3.bucket, Key="items.jsonl", Body=b"1\n2\n")
    result = read(s3, distributed(get_object("JSONL", MaxItemsPath="$.max")), "items.jsonl", max=-1)
    assert (result["error"], result["cause"]) == ("States.ItemReaderFailed", "field MaxItems must be positive")


def test_csv_with_headers_in_the_first_row(s3):
    s3.put_object(Bucket=s3.bucket, Key="rows.csv", Body=csv_text().encode())
    result = read(s3, distributed(get_object("CSV", CSVHeaderLocation="FIRST_ROW")), "rows.csv")
    assert result["output"] == ROWS


def test_csv_with_given_headers_and_another_delimiter(s3):
    s3.put_object(Bucket=s3.bucket, Key="rows.psv", Body=csv_text(header=False, delimiter="|").encode())
    config = {"CSVHeaderLocation": "GIVEN", "CSVHeaders": ["id", "name"], "CSVDelimiter": "PIPE", "MaxItems": 2}
    result = read(s3, distributed(get_object("CSV", **config)), "rows.psv")
    assert result["output"] == [{"id": row["id"], "name": row["name"]} for row in ROWS[:2]]


def test_csv_headers_must_differ(s3):
    s3.put_object(Bucket=s3.bucket, Key="rows.csv", Body=csv_text().encode())
    config = {"CSVHeaderLocation": "GIVEN", "CSVHeaders": ["a", "a"]}
    result = read(s3, distributed(get_object("CSV", **config)), "rows.csv")
    assert (result["error"], result["cause"]) == ("States.ItemReaderFailed", "CSV headers cannot contain duplicates.")


def test_an_s3_inventory_manifest(s3):
    """MANIFEST: the rows of the inventory's CSV files (one gzip, one not), named by its fileSchema."""
    first = "\n".join(f'"{s3.bucket}","photos/{n}.jpg","{100 + n}"' for n in range(3)) + "\n"
    second = f'"{s3.bucket}","photos/9.jpg","109"\n'
    s3.put_object(Bucket=s3.bucket, Key="inventory/data/a.csv.gz", Body=gzip.compress(first.encode()))
    s3.put_object(Bucket=s3.bucket, Key="inventory/data/b.csv", Body=second.encode())
    manifest = {"sourceBucket": s3.bucket, "destinationBucket": f"arn:aws:s3:::{s3.bucket}", "fileFormat": "CSV",
                "fileSchema": "Bucket, Key, Size",
                "files": [{"key": "inventory/data/a.csv.gz", "size": 1}, {"key": "inventory/data/b.csv", "size": 1}]}
    s3.put_object(Bucket=s3.bucket, Key="inventory/manifest.json", Body=json.dumps(manifest).encode())
    result = read(s3, distributed(get_object("MANIFEST")), "inventory/manifest.json")
    assert result["output"] == [{"Bucket": s3.bucket, "Key": f"photos/{n}.jpg", "Size": str(100 + n)}
                                for n in (0, 1, 2, 9)]


def test_list_objects_over_three_pages(s3):
    keys = [f"in/{n:02}.txt" for n in range(5)]
    for key in keys:
        s3.put_object(Bucket=s3.bucket, Key=key, Body=b"hello")
    s3.put_object(Bucket=s3.bucket, Key="other/x.txt", Body=b"not listed")
    calls = []
    s3_client_hook = lambda **kwargs: calls.append(kwargs)  # noqa: E731
    from chalicelib.resources import aws

    aws.client("s3").meta.events.register("before-call.s3.ListObjectsV2", s3_client_hook)
    reader = {"Resource": "arn:aws:states:::s3:listObjectsV2",
              "Parameters": {"Bucket.$": "$.Bucket", "Prefix": "in/", "MaxKeys": 2}}
    result = read(s3, distributed(reader), "")
    assert [item["Key"] for item in result["output"]] == keys
    assert len(calls) == 3
    first = result["output"][0]
    assert set(first) == {"Etag", "Key", "LastModified", "Size", "StorageClass"}
    assert (first["Size"], first["StorageClass"]) == (5, "STANDARD") and isinstance(first["LastModified"], int)


def test_a_missing_object_fails_the_reader(s3):
    result = read(s3, distributed(get_object("JSON")), "no-such-key.json")
    assert result["error"] == "States.ItemReaderFailed" and result["cause"].startswith("NoSuchKey")


def test_batches_with_batch_input(s3):
    items = [{"n": n} for n in range(7)]
    s3.put_object(Bucket=s3.bucket, Key="items.json", Body=json.dumps(items).encode())
    definition = distributed(get_object("JSON"), ItemBatcher={"MaxItemsPerBatchPath": "$.per",
                                                              "BatchInput": {"job.$": "$.job"}})
    result = read(s3, definition, "items.json", per=3, job="j-1")
    assert result["output"] == [{"Items": items[0:3], "BatchInput": {"job": "j-1"}},
                                {"Items": items[3:6], "BatchInput": {"job": "j-1"}},
                                {"Items": items[6:], "BatchInput": {"job": "j-1"}}]


def test_batches_by_bytes_after_the_item_selector():
    """MaxInputBytesPerBatch counts each batch's JSON (``{"Items":[...]}``); ItemSelector runs first."""
    definition = distributed(ItemSelector={"v.$": "$$.Map.Item.Value"},
                             ItemBatcher={"MaxInputBytesPerBatch": 40})
    items = ["aaaa", "bbbb", "cccc", "dddd", "eeee"]
    output = run(definition, items, clock=VirtualClock())["output"]
    assert [batch["Items"] for batch in output] == [[{"v": "aaaa"}, {"v": "bbbb"}], [{"v": "cccc"}, {"v": "dddd"}],
                                                    [{"v": "eeee"}]]
    assert all(len(json.dumps(batch, separators=(",", ":"))) <= 40 for batch in output)


def test_jsonata_reader_and_batcher(s3):
    items = [{"n": n} for n in range(4)]
    s3.put_object(Bucket=s3.bucket, Key="items.json", Body=json.dumps(items).encode())
    definition = distributed({"Resource": "arn:aws:states:::s3:getObject",
                              "Arguments": {"Bucket": "{% $states.input.Bucket %}", "Key": "{% $states.input.Key %}"},
                              "ReaderConfig": {"InputType": "JSON", "MaxItems": "{% $states.input.max %}"}},
                             ItemBatcher={"MaxItemsPerBatch": "{% 2 %}"})
    definition["QueryLanguage"] = "JSONata"
    result = read(s3, definition, "items.json", max=3)
    assert result["output"] == [{"Items": items[:2]}, {"Items": items[2:3]}]


@pytest.mark.parametrize("fields, named", [
    ({"ItemReader": {"Resource": "arn:aws:states:::s3:getObjectAcl", "Parameters": {}}}, "ItemReader.Resource"),
    ({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "PARQUET"},
                     "Parameters": {}}}, "ItemReader.ReaderConfig.InputType"),
    ({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "Parameters": {},
                     "ReaderConfig": {"InputType": "JSON", "ManifestType": "ATHENA_DATA"}}},
     "ItemReader.ReaderConfig.ManifestType"),
    ({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "Parameters": {},
                     "ReaderConfig": {"InputType": "JSON"}}, "ItemsPath": "$.items"}, "ItemsPath"),
    ({"ItemBatcher": {"BatchInput": {}}}, "ItemBatcher"),
    ({"ResultWriter": {"Resource": "arn:aws:states:::s3:putObjectAcl", "Parameters": {"Bucket": "b"}}},
     "ResultWriter.Resource"),
    ({"ResultWriter": {"WriterConfig": {"Transformation": "SQUASH"}}}, "ResultWriter.WriterConfig.Transformation"),
])
def test_validation_refuses_what_is_not_supported_naming_the_field(fields, named):
    problems = validate(distributed(**fields))
    field = named.rsplit(".", 1)[-1]
    assert problems and any(f"'{named}'" in problem.message or f'Field "{field}"' in problem.message
                            for problem in problems), problems


def test_writer_config_alone_shapes_the_output():
    definition = distributed(ResultWriter={"WriterConfig": {"Transformation": "FLATTEN", "OutputType": "JSON"}})
    definition["States"]["Map"]["ItemProcessor"]["States"]["Pass"]["Parameters"] = {"pair.$": "States.Array($, $)"}
    definition["States"]["Map"]["ItemProcessor"]["States"]["Pass"]["OutputPath"] = "$.pair"
    assert validate(definition) == []
    assert run(definition, [1, 2], clock=VirtualClock())["output"] == [1, 1, 2, 2]


def test_an_inline_map_has_no_item_reader():
    definition = distributed(get_object("JSON"))
    definition["States"]["Map"]["ItemProcessor"]["ProcessorConfig"] = {"Mode": "INLINE"}
    problems = validate(definition)
    assert any("'ItemReader'" in problem.message and "DISTRIBUTED" in problem.message for problem in problems)
