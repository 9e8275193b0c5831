"""A Distributed Map's own fields: ItemReader, ItemBatcher, ResultWriter, Label, ProcessorConfig.

The interpreter reads them as the state runs (paths, expressions and templates
evaluated on the Map's input) and leaves the I/O to handlers, as it does for a
Task: the ItemReader's resource (``arn:aws:states:::s3:getObject`` or
``...:s3:listObjectsV2``) is called with the reader's request and answers the
items; the items are then selected (ItemSelector) and batched (ItemBatcher)
here. With a handler for :data:`DISTRIBUTED_MAP` (the service has one) the
children are handed to it as one *map run*, and the Map waits until the run
answers with its result; without one they run inline, as an inline Map's
iterations do.

What is not supported is refused when the definition is compiled, naming the
field, so validation reports it.
"""
from __future__ import annotations

from typing import Any

from . import errors
from .errors import StatesError
from .expressions import JsonataTemplate
from .limits import MAX_PAYLOAD_BYTES, payload_size
from .processing import JSONATA, jsonata_bindings
from .tasks import task_failure
from .templates import Template, compact_json

#: The resource a map run is handed to (not a Task resource: only a Distributed Map calls it).
DISTRIBUTED_MAP = "states:distributedMap"
GET_OBJECT = "arn:aws:states:::s3:getObject"
LIST_OBJECTS = "arn:aws:states:::s3:listObjectsV2"
PUT_OBJECT = "arn:aws:states:::s3:putObject"
INPUT_TYPES = ("JSON", "JSONL", "CSV", "MANIFEST")
CSV_DELIMITERS = {"COMMA": ",", "PIPE": "|", "SEMICOLON": ";", "SPACE": " ", "TAB": "\t"}
TRANSFORMATIONS = ("NONE", "COMPACT", "FLATTEN")
OUTPUT_TYPES = ("JSON", "JSONL")
EXECUTION_TYPES = ("STANDARD", "EXPRESS")
#: AWS reads at most this many items (a larger MaxItems reads them all).
MAX_ITEMS = 100_000_000
RESULT_WRITER_FAILED = "States.ResultWriterFailed"

_READER_FIELDS = {"Resource", "Parameters", "Arguments", "ReaderConfig"}
_READER_CONFIG_FIELDS = {"InputType", "CSVHeaderLocation", "CSVHeaders", "CSVDelimiter", "MaxItems",
                         "MaxItemsPath"}
_BATCHER_FIELDS = {"MaxItemsPerBatch", "MaxItemsPerBatchPath", "MaxInputBytesPerBatch",
                   "MaxInputBytesPerBatchPath", "BatchInput"}
_WRITER_FIELDS = {"Resource", "Parameters", "Arguments", "WriterConfig"}


def _refuse(field: str, message: str) -> ValueError:
    return ValueError(f"Field '{field}' {message}")


def _only(fields: dict, allowed: set[str], where: str) -> None:
    for name in fields:
        if name not in allowed:
            raise _refuse(f"{where}.{name}", "is not supported here")


class Payload:
    """A template of the Map's (Parameters or Arguments), filled from its effective input."""

    def __init__(self, source: Any, language: str, field: str):
        self.language = language
        if language == JSONATA:
            self.template = JsonataTemplate(source, field)
        else:
            self.template = Template(source)

    def fill(self, value: Any, frame: dict, runner) -> Any:
        if self.language == JSONATA:
            if self.template.constant:
                return self.template.source
            bindings = jsonata_bindings(frame, runner, self.template.uses_context)
            return self.template.evaluate(bindings, frame)
        return self.template.evaluate(value, runner.env(frame))


def _number(reader, frame: dict, runner, minimum: int, what: str) -> int | None:
    """An integer field (literal, path or expression) of at least ``minimum``; None when absent."""
    if reader is None:
        return None
    value = reader.read(frame, runner)
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value):
        raise reader.invalid(frame, value, expected="integer",
                             path_message='The {field} field refers to value "{shown}" which is not a valid integer: '
                                          "{path}")
    if value < minimum:
        raise StatesError(errors.RUNTIME if what != "MaxItems" else errors.ITEM_READER_FAILED,
                          f"field {what} must be positive")
    return int(value)


class ItemReader:
    """``ItemReader``: the request its resource gets, with ``ReaderConfig`` (MaxItems read at run time)."""

    def __init__(self, spec: Any, io, language: str):
        if not isinstance(spec, dict):
            raise _refuse("ItemReader", "must be an object")
        _only(spec, _READER_FIELDS, "ItemReader")
        self.resource = spec.get("Resource")
        if self.resource not in (GET_OBJECT, LIST_OBJECTS):
            raise _refuse("ItemReader.Resource", f"must be '{GET_OBJECT}' or '{LIST_OBJECTS}', "
                                                  f"not {compact_json(self.resource)}")
        key = "Arguments" if language == JSONATA else "Parameters"
        if ("Parameters" if language == JSONATA else "Arguments") in spec:
            raise _refuse(f"ItemReader.{'Parameters' if language == JSONATA else 'Arguments'}",
                          f"is not supported in a {language} state: use '{key}'")
        self.parameters = Payload(spec.get(key, {}), language, f"ItemReader/{key}")
        config = spec.get("ReaderConfig") or {}
        if not isinstance(config, dict):
            raise _refuse("ItemReader.ReaderConfig", "must be an object")
        _only(config, _READER_CONFIG_FIELDS, "ItemReader.ReaderConfig")
        self.config = {k: v for k, v in config.items() if k not in ("MaxItems", "MaxItemsPath")}
        input_type = config.get("InputType")
        if self.resource == GET_OBJECT and input_type not in INPUT_TYPES:
            raise _refuse("ItemReader.ReaderConfig.InputType",
                          f"must be one of {', '.join(INPUT_TYPES)} for s3:getObject, not {compact_json(input_type)}")
        if self.resource == LIST_OBJECTS and input_type is not None:
            raise _refuse("ItemReader.ReaderConfig.InputType", "is not used by s3:listObjectsV2")
        if input_type == "CSV":
            location = config.get("CSVHeaderLocation", "FIRST_ROW")
            if location not in ("FIRST_ROW", "GIVEN"):
                raise _refuse("ItemReader.ReaderConfig.CSVHeaderLocation",
                              f"must be FIRST_ROW or GIVEN, not {compact_json(location)}")
            headers = config.get("CSVHeaders")
            if location == "GIVEN" and (not isinstance(headers, list) or not headers
                                        or not all(isinstance(h, str) for h in headers)):
                raise _refuse("ItemReader.ReaderConfig.CSVHeaders", "must be a list of strings with GIVEN")
            if location == "FIRST_ROW" and headers is not None:
                raise _refuse("ItemReader.ReaderConfig.CSVHeaders", "is only used with CSVHeaderLocation GIVEN")
            delimiter = config.get("CSVDelimiter", "COMMA")
            if delimiter not in CSV_DELIMITERS:
                raise _refuse("ItemReader.ReaderConfig.CSVDelimiter",
                              f"must be one of {', '.join(CSV_DELIMITERS)}, not {compact_json(delimiter)}")
        elif any(k in config for k in ("CSVHeaderLocation", "CSVHeaders", "CSVDelimiter")):
            raise _refuse("ItemReader.ReaderConfig.CSVHeaderLocation", "is only used with InputType CSV")
        self.max_items = io.field(config, "MaxItems")

    def request(self, value: Any, frame: dict, runner) -> dict:
        """What the reader's handler gets: ``{"Parameters": ..., "ReaderConfig": {..., "MaxItems": n}}``."""
        max_items = _number(self.max_items, frame, runner, 0, "MaxItems")
        config = dict(self.config)
        if max_items:
            config["MaxItems"] = min(max_items, MAX_ITEMS)
        return {"Parameters": self.parameters.fill(value, frame, runner), "ReaderConfig": config}


class ItemBatcher:
    """``ItemBatcher``: children of ``{"Items": [...], "BatchInput": ...}``."""

    def __init__(self, spec: Any, io, language: str):
        if not isinstance(spec, dict):
            raise _refuse("ItemBatcher", "must be an object")
        _only(spec, _BATCHER_FIELDS, "ItemBatcher")
        self.max_items = io.field(spec, "MaxItemsPerBatch")
        self.max_bytes = io.field(spec, "MaxInputBytesPerBatch")
        if self.max_items is None and self.max_bytes is None:
            raise _refuse("ItemBatcher", "needs MaxItemsPerBatch or MaxInputBytesPerBatch (or their Path forms)")
        self.batch_input = (Payload(spec["BatchInput"], language, "ItemBatcher/BatchInput")
                            if "BatchInput" in spec else None)

    def batches(self, items: list, value: Any, frame: dict, runner) -> list[dict]:
        max_items = _number(self.max_items, frame, runner, 1, "MaxItemsPerBatch")
        max_bytes = _number(self.max_bytes, frame, runner, 1, "MaxInputBytesPerBatch")
        max_bytes = min(max_bytes or MAX_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES)
        shell: dict = {"Items": []}
        if self.batch_input is not None:
            shell["BatchInput"] = self.batch_input.fill(value, frame, runner)
        empty = payload_size(shell)
        batches: list[dict] = []
        current: list = []
        size = empty
        for item in items:
            item_size = payload_size(item)
            if empty + item_size > max_bytes:
                raise StatesError(errors.DATA_LIMIT_EXCEEDED, f"An item of {item_size} bytes does not fit "
                                                               f"a batch of at most {max_bytes} bytes.")
            grown = size + item_size + (1 if current else 0)
            if current and ((max_items and len(current) >= max_items) or grown > max_bytes):
                batches.append({**shell, "Items": current})
                current, grown = [], empty + item_size
            current.append(item)
            size = grown
        if current:
            batches.append({**shell, "Items": current})
        return batches


class ResultWriter:
    """``ResultWriter``: where the run's results go (S3), and how they are shaped (``WriterConfig``)."""

    def __init__(self, spec: Any, language: str):
        if not isinstance(spec, dict) or not spec:
            raise _refuse("ResultWriter", "must be an object with Resource and Parameters, or WriterConfig")
        _only(spec, _WRITER_FIELDS, "ResultWriter")
        self.resource = spec.get("Resource")
        key = "Arguments" if language == JSONATA else "Parameters"
        if self.resource is not None and self.resource != PUT_OBJECT:
            raise _refuse("ResultWriter.Resource", f"must be '{PUT_OBJECT}', not {compact_json(self.resource)}")
        if (self.resource is None) != (key not in spec):
            raise _refuse(f"ResultWriter.{key}", "and ResultWriter.Resource go together")
        self.parameters = Payload(spec[key], language, f"ResultWriter/{key}") if key in spec else None
        config = spec.get("WriterConfig")
        if config is not None:
            if not isinstance(config, dict):
                raise _refuse("ResultWriter.WriterConfig", "must be an object")
            _only(config, {"OutputType", "Transformation"}, "ResultWriter.WriterConfig")
            if config.get("OutputType", "JSON") not in OUTPUT_TYPES:
                raise _refuse("ResultWriter.WriterConfig.OutputType", f"must be one of {', '.join(OUTPUT_TYPES)}")
            if config.get("Transformation", "NONE") not in TRANSFORMATIONS:
                raise _refuse("ResultWriter.WriterConfig.Transformation",
                              f"must be one of {', '.join(TRANSFORMATIONS)}")
        self.output_type = (config or {}).get("OutputType", "JSON")
        # AWS's defaults: the full records when exporting without WriterConfig, the outputs otherwise.
        self.transformation = (config or {}).get("Transformation", "NONE" if self.resource else "COMPACT")

    def request(self, value: Any, frame: dict, runner) -> dict:
        out = {"OutputType": self.output_type, "Transformation": self.transformation}
        if self.parameters is not None:
            target = self.parameters.fill(value, frame, runner)
            if not isinstance(target, dict) or not isinstance(target.get("Bucket"), str):
                raise StatesError(RESULT_WRITER_FAILED, "The ResultWriter's parameters need a Bucket (a string).")
            prefix = target.get("Prefix", "")
            if not isinstance(prefix, str):
                raise StatesError(RESULT_WRITER_FAILED, "The ResultWriter's Prefix must be a string.")
            out.update(Bucket=target["Bucket"], Prefix=prefix)
        return out


def transform(records: list[dict], transformation: str) -> list:
    """Child records (AWS's result-file entries: ``Status``, ``Output`` as JSON text, ...) as
    ``WriterConfig.Transformation`` shapes them; a failed child's record stays whole."""
    if transformation == "NONE":
        return records
    import json

    out: list = []
    for record in records:
        if record.get("Status") != "SUCCEEDED":
            out.append(record)
            continue
        output = json.loads(record["Output"]) if isinstance(record.get("Output"), str) else record.get("Output")
        if transformation == "FLATTEN" and isinstance(output, list):
            out.extend(output)
        else:
            out.append(output)
    return out


class DistributedConfig:
    """Everything a Distributed Map adds to a Map, compiled once."""

    def __init__(self, spec: dict, processor_spec: dict, io, language: str):
        config = processor_spec.get("ProcessorConfig") or {}
        self.execution_type = config.get("ExecutionType", "STANDARD")
        if self.execution_type not in EXECUTION_TYPES:
            raise _refuse("ItemProcessor.ProcessorConfig.ExecutionType",
                          f"must be STANDARD or EXPRESS, not {compact_json(self.execution_type)}")
        self.label = spec.get("Label")
        if self.label is not None and (not isinstance(self.label, str) or len(self.label) > 40
                                       or any(c in self.label for c in " <>{}[]?*\"#%\\^|~`$&,;:/")):
            raise _refuse("Label", "must be at most 40 characters, without blanks or any of <>{}[]?*\"#%\\^|~`$&,;:/")
        self.reader = ItemReader(spec["ItemReader"], io, language) if "ItemReader" in spec else None
        if self.reader is not None:
            for field in ("ItemsPath", "Items"):
                if field in spec:
                    raise _refuse(field, "together with an ItemReader is not supported: the reader's items are "
                                         "the Map's items")
        self.batcher = ItemBatcher(spec["ItemBatcher"], io, language) if "ItemBatcher" in spec else None
        self.writer = ResultWriter(spec["ResultWriter"], language) if "ResultWriter" in spec else None

    def read(self, value: Any, frame: dict, runner) -> list:
        """The items the ItemReader's resource answers (a list)."""
        request = self.reader.request(value, frame, runner)
        handler = runner.resolver.resolve(self.reader.resource)
        if handler is None:
            raise StatesError(errors.RUNTIME, f"No handler is configured for the resource '{self.reader.resource}'.")
        context = runner.task_context(self.reader.resource, frame["at"], frame)
        try:
            items = handler(request, context)
        except Exception as exc:  # a reader's failure is the Map's, as AWS reports it
            raise task_failure(exc) from None
        if not isinstance(items, list):
            raise StatesError(errors.ITEM_READER_FAILED, "Attempting to map over non-iterable node.")
        return items


def refuse_on_inline(spec: dict) -> None:
    """An inline Map has none of the distributed fields (AWS refuses them)."""
    for field in ("ItemReader", "ItemBatcher", "ResultWriter"):
        if field in spec:
            raise _refuse(field, "is only supported in a Map whose ProcessorConfig.Mode is DISTRIBUTED")


__all__ = ["DISTRIBUTED_MAP", "DistributedConfig", "GET_OBJECT", "LIST_OBJECTS", "PUT_OBJECT",
           "RESULT_WRITER_FAILED", "refuse_on_inline", "transform"]
