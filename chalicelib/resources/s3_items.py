"""A Distributed Map's S3 I/O: the ItemReader's resources, and the ResultWriter's files.

* ``arn:aws:states:::s3:getObject`` reads one object as ``ReaderConfig.InputType`` says:
  ``JSON`` (an array), ``JSONL`` (one value a line), ``CSV`` (headers from the first row, or
  ``CSVHeaders`` with ``GIVEN``; ``CSVDelimiter``), or ``MANIFEST`` (an S3 Inventory
  ``manifest.json``: the rows of its CSV files, gzip or not, named by its ``fileSchema``).
  JSON Lines, CSV and inventory files are streamed a line at a time (``iter_lines``), and
  reading stops at ``MaxItems``; a JSON array has to be read whole to be parsed.
* ``arn:aws:states:::s3:listObjectsV2`` lists the objects of ``Bucket`` (``Prefix``, and any
  other ListObjectsV2 parameter), a page at a time, as items ``{"Etag", "Key", "LastModified",
  "Size", "StorageClass"}``.
* :func:`write_results` lays a map run's results out as Step Functions does: ``manifest.json`` and
  ``SUCCEEDED_n``/``FAILED_n``/``PENDING_n`` files under ``<Prefix>/<map run ID>/``.

A reader's failure (no such bucket or key, a body that does not parse) is
``States.ItemReaderFailed``; a writer's ``States.ResultWriterFailed``. boto3 is
imported by the first call (see ``aws``); the S3 endpoint is boto3's own setting
(``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``).
"""
from __future__ import annotations

import codecs
import csv
import gzip
import json
from typing import Any, Iterable, Iterator

from ..asl import errors
from ..asl.distributed import CSV_DELIMITERS, GET_OBJECT, LIST_OBJECTS, RESULT_WRITER_FAILED
from ..asl.tasks import TaskContext, TaskFailed
from . import aws

#: A result file holds at most this many bytes; more go to the next file (AWS splits at 5 GB).
RESULT_FILE_BYTES = 5 * 1024 ** 3
STATUSES = ("FAILED", "PENDING", "SUCCEEDED")


def resolve(resource: str):
    if resource == GET_OBJECT:
        return read_object
    if resource == LIST_OBJECTS:
        return list_objects
    return None


def _failed(message: str) -> TaskFailed:
    return TaskFailed(errors.ITEM_READER_FAILED, message)


def _s3_error(exc: Exception, error: str = errors.ITEM_READER_FAILED) -> TaskFailed:
    response = getattr(exc, "response", None) or {}
    detail = response.get("Error") or {}
    code = detail.get("Code") or type(exc).__name__
    return TaskFailed(error, f"{code}: {detail.get('Message') or exc}")


def _location(parameters: Any) -> tuple[str, str]:
    if not isinstance(parameters, dict) or not isinstance(parameters.get("Bucket"), str) \
            or not isinstance(parameters.get("Key"), str):
        raise _failed("The ItemReader's parameters need a Bucket and a Key (strings).")
    return parameters["Bucket"], parameters["Key"]


def _body(bucket: str, key: str, version: str | None = None):
    s3 = aws.client("s3")
    try:
        return s3.get_object(Bucket=bucket, Key=key, **({"VersionId": version} if version else {}))["Body"]
    except Exception as exc:  # noqa: BLE001 - any S3 failure is the reader's
        raise _s3_error(exc) from None


def _limited(items: Iterable, max_items: int | None) -> list:
    out = []
    for item in items:
        if max_items and len(out) >= max_items:
            break
        out.append(item)
    return out


def read_object(request: dict, context: TaskContext) -> list:
    parameters, config = request.get("Parameters"), request.get("ReaderConfig") or {}
    bucket, key = _location(parameters)
    max_items = config.get("MaxItems")
    input_type = config.get("InputType")
    body = _body(bucket, key, parameters.get("VersionId"))
    try:
        if input_type == "JSON":
            try:
                document = json.loads(body.read())
            except ValueError as exc:
                raise _failed(f"The object is not JSON: {exc}") from None
            if not isinstance(document, list):
                raise _failed("Attempting to map over non-iterable node.")
            return document[:max_items] if max_items else document
        lines = _text_lines(body.iter_lines())
        if input_type == "JSONL":
            return _limited(_json_lines(lines), max_items)
        if input_type == "CSV":
            return _limited(_csv_rows(lines, config), max_items)
        return _limited(_inventory(_manifest(lines)), max_items)
    finally:
        body.close()


def _text_lines(raw: Iterable[bytes]) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    for line in raw:
        try:
            yield decoder.decode(line + b"\n")
        except UnicodeDecodeError:
            raise _failed("The object is not UTF-8 text.") from None


def _json_lines(lines: Iterable[str]) -> Iterator[Any]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except ValueError as exc:
            raise _failed(f"Line {number} is not JSON: {exc}") from None


def _csv_rows(lines: Iterable[str], config: dict) -> Iterator[dict]:
    rows = csv.reader(lines, delimiter=CSV_DELIMITERS[config.get("CSVDelimiter", "COMMA")])
    try:
        if config.get("CSVHeaderLocation", "FIRST_ROW") == "GIVEN":
            headers = list(config["CSVHeaders"])
        else:
            headers = next(rows, None)
            if headers is None:
                return
        if len(set(headers)) != len(headers):
            raise _failed("CSV headers cannot contain duplicates.")
        for row in rows:
            if not row:
                continue
            yield {header: row[index] if index < len(row) else "" for index, header in enumerate(headers)}
    except csv.Error as exc:
        raise _failed(f"The object is not CSV: {exc}") from None


def _manifest(lines: Iterable[str]) -> dict:
    try:
        manifest = json.loads("".join(lines))
    except ValueError as exc:
        raise _failed(f"The manifest is not JSON: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise _failed("The manifest is not an S3 Inventory manifest: it has no 'files'.")
    if manifest.get("fileFormat", "CSV") != "CSV":
        raise _failed(f"Only CSV inventories can be read, not {manifest.get('fileFormat')}.")
    return manifest


def _inventory(manifest: dict) -> Iterator[dict]:
    """The rows of an S3 Inventory's CSV files, named by its ``fileSchema``, one file at a time."""
    schema = [name.strip() for name in str(manifest.get("fileSchema", "Bucket, Key")).split(",")]
    bucket = str(manifest.get("destinationBucket", "")).rsplit(":", 1)[-1]
    for entry in manifest["files"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise _failed("A file of the manifest has no 'key'.")
        body = _body(bucket, entry["key"])
        try:
            raw = (gzip.GzipFile(fileobj=body) if entry["key"].endswith(".gz") else body.iter_lines())
            for row in csv.reader(_text_lines(line.rstrip(b"\n") for line in raw)):
                if row:
                    yield dict(zip(schema, row))
        except (OSError, EOFError) as exc:
            raise _failed(f"The inventory file {entry['key']} could not be read: {exc}") from None
        finally:
            body.close()


def list_objects(request: dict, context: TaskContext) -> list:
    parameters = request.get("Parameters")
    if not isinstance(parameters, dict) or not isinstance(parameters.get("Bucket"), str):
        raise _failed("The ItemReader's parameters need a Bucket (a string).")
    max_items = (request.get("ReaderConfig") or {}).get("MaxItems")
    s3 = aws.client("s3")
    items: list[dict] = []
    token = None
    try:
        while True:
            page = s3.list_objects_v2(**parameters, **({"ContinuationToken": token} if token else {}))
            for entry in page.get("Contents", ()):
                items.append({"Etag": entry.get("ETag"), "Key": entry["Key"],
                              "LastModified": int(entry["LastModified"].timestamp()),
                              "Size": entry.get("Size"), "StorageClass": entry.get("StorageClass", "STANDARD")})
                if max_items and len(items) >= max_items:
                    return items
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return items
    except TaskFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - any S3 failure (or bad parameter) is the reader's
        raise _s3_error(exc) from None


def write_results(target: dict, map_run_arn: str, run_id: str, records: dict[str, list[dict]]) -> dict:
    """Write ``records`` (by status) under ``<Prefix>/<run_id>/``; the ``ResultWriterDetails``."""
    bucket, prefix = target["Bucket"], target.get("Prefix", "")
    jsonl = target.get("OutputType") == "JSONL"
    base = f"{prefix.rstrip('/')}/{run_id}/" if prefix else f"{run_id}/"
    s3 = aws.client("s3")
    files: dict[str, list[dict]] = {status: [] for status in STATUSES}
    try:
        for status in STATUSES:
            for number, body in enumerate(_files(records.get(status) or [], jsonl)):
                key = f"{base}{status}_{number}.{'jsonl' if jsonl else 'json'}"
                s3.put_object(Bucket=bucket, Key=key, Body=body)
                files[status].append({"Key": key, "Size": len(body)})
        manifest = {"DestinationBucket": bucket, "MapRunArn": map_run_arn, "ResultFiles": files}
        s3.put_object(Bucket=bucket, Key=base + "manifest.json",
                      Body=json.dumps(manifest, separators=(",", ":")).encode())
    except Exception as exc:  # noqa: BLE001 - any S3 failure is the writer's
        raise _s3_error(exc, RESULT_WRITER_FAILED) from None
    return {"Bucket": bucket, "Key": base + "manifest.json"}


def _files(records: list, jsonl: bool) -> Iterator[bytes]:
    """The bodies of one status's files: a JSON array (or JSON Lines) each, at most RESULT_FILE_BYTES."""
    chunk: list[bytes] = []
    size = 0
    for record in records:
        text = json.dumps(record, separators=(",", ":")).encode()
        if chunk and size + len(text) + 2 > RESULT_FILE_BYTES:
            yield _joined(chunk, jsonl)
            chunk, size = [], 0
        chunk.append(text)
        size += len(text) + 1
    if chunk:
        yield _joined(chunk, jsonl)


def _joined(chunk: list[bytes], jsonl: bool) -> bytes:
    return b"\n".join(chunk) + b"\n" if jsonl else b"[" + b",".join(chunk) + b"]"
