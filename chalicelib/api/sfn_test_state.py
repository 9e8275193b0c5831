"""The Step Functions API's TestState: one state run once, as the service runs it (``Service.test_state``).

The JSON members (``definition``, ``input``, ``variables``, ``context``, ``mock.result``) are
JSON text, as in AWS, and so are ``output`` and the values of ``inspectionData``. ``roleArn``,
``revealSecrets`` and ``mock.fieldValidationMode`` are accepted and change nothing (no IAM role is
assumed, no mocked result is checked against a service's model); of ``stateConfiguration``,
``retrierRetryCount`` is used.
"""
from __future__ import annotations

from typing import Any

from .sfn_protocol import AwsError, Protocol, json_text, parse_json_field

#: inspectionData members that are numbers, not JSON text.
NUMBERS = frozenset({"maxConcurrency", "toleratedFailureCount", "toleratedFailurePercentage"})


def test_state(protocol: Protocol, params: dict) -> dict:
    definition = parse_json_field(params["definition"], "InvalidDefinition", "definition")
    input = parse_json_field(params.get("input", "{}"), "InvalidExecutionInput", "input")
    options: dict[str, Any] = {"state_name": params.get("stateName"),
                               "inspection_level": params.get("inspectionLevel", "INFO"),
                               "retrier_retry_count": (params.get("stateConfiguration") or {}).get(
                                   "retrierRetryCount", 0)}
    if "variables" in params:
        options["variables"] = parse_json_field(params["variables"], "ValidationException", "variables")
    if "context" in params:
        options["context"] = parse_json_field(params["context"], "ValidationException", "context")
    if "mock" in params:
        mock = params["mock"]
        if "result" in mock:
            options["mock"] = {"result": parse_json_field(mock["result"], "ValidationException", "mock result")}
        elif "errorOutput" in mock:
            options["mock"] = {"errorOutput": mock["errorOutput"]}
        else:
            raise AwsError("ValidationException", "A mock has either a result or an errorOutput.")
    result = protocol.service.test_state(definition, input, **options)
    out: dict[str, Any] = {"status": result["status"]}
    if "output" in result:
        out["output"] = json_text(result["output"])
    for field in ("error", "cause", "nextState"):
        if result.get(field) is not None:
            out[field] = result[field]
    if "inspectionData" in result:
        out["inspectionData"] = {
            key: value if key in NUMBERS or key == "errorDetails" else json_text(value)
            for key, value in result["inspectionData"].items()}
    return out


OPERATIONS = {"TestState": test_state}
