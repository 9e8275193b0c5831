"""The Step Functions API's map runs: DescribeMapRun and ListMapRuns (see ``chalicelib/service/map_runs.py``)."""
from __future__ import annotations

from ..service.map_runs import run_id_of
from .sfn_protocol import AwsError, Protocol, epoch, page_of


def map_run(protocol: Protocol, arn: str) -> tuple[str, dict]:
    """The run ``arn`` names: its ID and description (InvalidArn, ResourceNotFound)."""
    run_id = run_id_of(arn)
    if run_id is None or not arn.startswith(protocol.arns.prefix + "mapRun:"):
        raise AwsError("InvalidArn", f"Invalid Arn: '{arn}'")
    found = protocol.service.map_runs.describe(run_id)
    if found is None or found["mapRunArn"] != arn:
        raise AwsError("ResourceNotFound", f"Map Run Does Not Exist: '{arn}'")
    return run_id, found


def describe_map_run(protocol: Protocol, params: dict) -> dict:
    _, found = map_run(protocol, params["mapRunArn"])
    out = {**found, "startDate": epoch(found["startDate"]), "redriveCount": 0}
    if found.get("stopDate"):
        out["stopDate"] = epoch(found["stopDate"])
    else:
        out.pop("stopDate", None)
    return out


def list_map_runs(protocol: Protocol, params: dict) -> dict:
    """The execution's map runs, oldest first (an execution has few: one per Distributed Map run)."""
    document = protocol.execution(params["executionArn"])
    runs = protocol.service.map_runs.of_execution(document["executionId"])
    page, token = page_of(runs, params)
    out: dict = {"mapRuns": [{"executionArn": found["executionArn"], "mapRunArn": found["mapRunArn"],
                              "stateMachineArn": found["mapRunArn"].replace(":mapRun:", ":stateMachine:", 1)
                                                                  .rsplit(":", 1)[0],
                              "startDate": epoch(found["startDate"]),
                              **({"stopDate": epoch(found["stopDate"])} if found.get("stopDate") else {})}
                             for found in page]}
    if token is not None:
        out["nextToken"] = token
    return out


OPERATIONS = {
    "DescribeMapRun": describe_map_run,
    "ListMapRuns": list_map_runs,
}
