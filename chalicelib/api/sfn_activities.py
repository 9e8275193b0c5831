"""The Step Functions API's activity operations: the registry (``service.activities``) and the workers' poll.

``CreateActivity`` is idempotent by name, as in AWS: the same name answers the activity
that exists (its tags are not changed), unless another ``encryptionConfiguration`` is
asked for (``ActivityAlreadyExists``). ``GetActivityTask`` waits up to the stage's
``ACTIVITY_POLL_SECONDS`` for a task and answers ``{}`` (no ``taskToken``) when none came.
"""
from __future__ import annotations

from ..service import ServiceError
from .sfn_protocol import AwsError, Protocol, check_name, page_of_names

MAX_TAGS = 50


def _name(protocol: Protocol, arn: str) -> str:
    [name] = protocol.arns.parse(arn, "activity", 1)
    return name


def _require(protocol: Protocol, arn: str):
    activity = protocol.service.activities.get(_name(protocol, arn))
    if activity is None:
        raise AwsError("ActivityDoesNotExist", f"Activity Does Not Exist: '{arn}'")
    return activity


def create_activity(protocol: Protocol, params: dict) -> dict:
    name = params["name"]
    check_name(name)
    if len(params.get("tags", [])) > MAX_TAGS:
        raise AwsError("TooManyTags", f"Too many tags: at most {MAX_TAGS}.")
    encryption = params.get("encryptionConfiguration")
    if encryption is not None and encryption["type"] not in ("AWS_OWNED_KEY", "CUSTOMER_MANAGED_KMS_KEY"):
        raise AwsError("InvalidEncryptionConfiguration", f"Invalid encryption type: '{encryption['type']}'")
    try:
        activity, _ = protocol.service.activities.create(name, encryption)
    except ServiceError as error:
        if error.code == "ActivityAlreadyExists":
            raise AwsError("ActivityAlreadyExists", error.message) from None
        raise
    return {"activityArn": protocol.arns.activity(activity.name), "creationDate": activity.created}


def describe_activity(protocol: Protocol, params: dict) -> dict:
    activity = _require(protocol, params["activityArn"])
    return {"activityArn": protocol.arns.activity(activity.name), "name": activity.name,
            "creationDate": activity.created, "encryptionConfiguration": activity.encryption}


def delete_activity(protocol: Protocol, params: dict) -> dict:
    """Deleting one that is not there changes nothing, as in AWS."""
    protocol.service.activities.delete(_name(protocol, params["activityArn"]))
    return {}


def list_activities(protocol: Protocol, params: dict) -> dict:
    return page_of_names(protocol.service.activities, params, "activities", lambda name, activity: {
        "activityArn": protocol.arns.activity(name), "name": name, "creationDate": activity.created})


def get_activity_task(protocol: Protocol, params: dict) -> dict:
    activity = _require(protocol, params["activityArn"])
    task = protocol.service.activities.take(activity.name, params.get("workerName"),
                                            protocol.config.activity_poll_seconds)
    return task or {}


OPERATIONS = {
    "CreateActivity": create_activity,
    "DescribeActivity": describe_activity,
    "DeleteActivity": delete_activity,
    "ListActivities": list_activities,
    "GetActivityTask": get_activity_task,
}
