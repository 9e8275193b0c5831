"""The Step Functions API's state machine operations: the registry (``service.machines``) and tags.

The shipped ``state_machines/`` appear as registered machines (read-only); machines created
here are kept in Redis. ``revisionId`` is the definition's content hash, the one an
execution keeps, so ``DescribeStateMachineForExecution`` shows what an execution runs even
after the machine was updated or deleted.
"""
from __future__ import annotations

import json
from typing import Any

from ..asl import validate
from ..service import ServiceError
from ..service.machines import Machine
from .sfn_protocol import AwsError, Protocol, check_name, page_of_names

MAX_TAGS = 50
LOGGING = {"level": "OFF", "includeExecutionData": False}


def _machine_name(protocol: Protocol, arn: str) -> str:
    [name] = protocol.arns.parse(arn, "stateMachine", 1)
    return name


def _require(protocol: Protocol, arn: str, missing: str = "StateMachineDoesNotExist") -> Machine:
    machine = protocol.service.machines.get(_machine_name(protocol, arn))
    if machine is None:
        raise AwsError(missing, f"State Machine Does Not Exist: '{arn}'")
    return machine


def _role(protocol: Protocol, machine: Machine) -> str:
    """The machine's role: as created, or for a shipped one the role the context object names."""
    return machine.role_arn or f"arn:aws:iam::{protocol.config.aws_account_id}:role/{machine.name}-role"


def _tags(tags: list[dict]) -> dict[str, str]:
    if len(tags) > MAX_TAGS:
        raise AwsError("TooManyTags", f"Too many tags: at most {MAX_TAGS}.")
    return {tag.get("key", ""): tag.get("value", "") for tag in tags}


def create_state_machine(protocol: Protocol, params: dict) -> dict:
    name = params["name"]
    check_name(name)
    tags = _tags(params.get("tags", []))
    try:
        machine, _ = protocol.service.machines.create(
            name, params["definition"], role_arn=params["roleArn"], type=params.get("type", "STANDARD"),
            tags=tags)
    except ServiceError as error:
        if error.code == "StateMachineAlreadyExists":
            raise AwsError("StateMachineAlreadyExists", error.message) from None
        raise
    return {"stateMachineArn": protocol.arns.state_machine(machine.name), "creationDate": machine.created}


def describe_state_machine(protocol: Protocol, params: dict) -> dict:
    machine = _require(protocol, params["stateMachineArn"])
    out: dict[str, Any] = {
        "stateMachineArn": protocol.arns.state_machine(machine.name),
        "name": machine.name,
        "status": "ACTIVE",
        "definition": machine.definition,
        "roleArn": _role(protocol, machine),
        "type": machine.type,
        "creationDate": machine.created,
        "revisionId": machine.revision,
        "loggingConfiguration": LOGGING,
        "tracingConfiguration": {"enabled": False},
    }
    if machine.description:
        out["description"] = machine.description
    return out


def update_state_machine(protocol: Protocol, params: dict) -> dict:
    if "definition" not in params and "roleArn" not in params:
        raise AwsError("MissingRequiredParameter", "Either the definition or the roleArn must be specified.")
    name = _require(protocol, params["stateMachineArn"]).name
    try:
        machine = protocol.service.machines.update(name, definition=params.get("definition"),
                                                   role_arn=params.get("roleArn"))
    except ServiceError as error:
        if error.code == "StateMachineReadOnly":
            raise AwsError("ValidationException", error.message) from None
        raise
    return {"updateDate": machine.updated, "revisionId": machine.revision}


def delete_state_machine(protocol: Protocol, params: dict) -> dict:
    name = _machine_name(protocol, params["stateMachineArn"])
    try:
        protocol.service.machines.delete(name)
    except ServiceError as error:
        if error.code == "StateMachineReadOnly":
            raise AwsError("ValidationException", error.message) from None
        raise
    return {}


def list_state_machines(protocol: Protocol, params: dict) -> dict:
    return page_of_names(protocol.service.machines, params, "stateMachines", lambda name, machine: {
        "stateMachineArn": protocol.arns.state_machine(name), "name": name, "type": machine.type,
        "creationDate": machine.created})


def validate_state_machine_definition(protocol: Protocol, params: dict) -> dict:
    limit = params.get("maxResults") or 100
    try:
        definition = json.loads(params["definition"])
        problems = [{"severity": "ERROR", "code": "SCHEMA_VALIDATION_FAILED", "message": p.message,
                     **({"location": p.to_json()["location"]} if p.to_json().get("location") else {})}
                    for p in validate(definition)]
    except ValueError as exc:
        problems = [{"severity": "ERROR", "code": "INVALID_JSON_DESCRIPTION", "message": str(exc)}]
    return {"result": "FAIL" if problems else "OK", "diagnostics": problems[:limit],
            "truncated": len(problems) > limit}


def describe_state_machine_for_execution(protocol: Protocol, params: dict) -> dict:
    document = protocol.execution(params["executionArn"])
    compiled = protocol.service.runs.definition(
        protocol.service.runs.reload(document["executionId"]).definition_hash)
    name = document.get("stateMachine") or "inline"
    machine = protocol.service.machines.get(name) if document.get("stateMachine") else None
    role = _role(protocol, machine) if machine is not None \
        else f"arn:aws:iam::{protocol.config.aws_account_id}:role/{name}-role"
    updated = machine.updated if machine is not None and machine.revision == compiled.hash else None
    return {"stateMachineArn": protocol.arns.state_machine(name), "name": name, "definition": compiled.text,
            "roleArn": role, "updateDate": updated if updated is not None else document_start(document),
            "revisionId": compiled.hash, "loggingConfiguration": LOGGING,
            "tracingConfiguration": {"enabled": False}}


def document_start(document: dict) -> float:
    from .sfn_protocol import epoch

    return epoch(document["startDate"])


def _tagged(protocol: Protocol, arn: str) -> Machine:
    return _require(protocol, arn, missing="ResourceNotFound")


def tag_resource(protocol: Protocol, params: dict) -> dict:
    machine = _tagged(protocol, params["resourceArn"])
    tags = _tags(params["tags"])
    if len({**machine.tags, **tags}) > MAX_TAGS:
        raise AwsError("TooManyTags", f"Too many tags: at most {MAX_TAGS} on one resource.")
    protocol.service.machines.tag(machine.name, tags)
    return {}


def untag_resource(protocol: Protocol, params: dict) -> dict:
    machine = _tagged(protocol, params["resourceArn"])
    protocol.service.machines.untag(machine.name, params["tagKeys"])
    return {}


def list_tags_for_resource(protocol: Protocol, params: dict) -> dict:
    machine = _tagged(protocol, params["resourceArn"])
    return {"tags": [{"key": k, "value": v} for k, v in sorted(machine.tags.items())]}


OPERATIONS = {
    "CreateStateMachine": create_state_machine,
    "DescribeStateMachine": describe_state_machine,
    "UpdateStateMachine": update_state_machine,
    "DeleteStateMachine": delete_state_machine,
    "ListStateMachines": list_state_machines,
    "ValidateStateMachineDefinition": validate_state_machine_definition,
    "DescribeStateMachineForExecution": describe_state_machine_for_execution,
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsForResource": list_tags_for_resource,
}
