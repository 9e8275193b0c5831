"""AWS services through boto3: the AWS SDK integrations and the optimized SNS, SQS and DynamoDB ones.

* ``arn:aws:states:::aws-sdk:SERVICE:ACTION``: SERVICE as Step Functions
  writes it (``s3``, ``sesv2``, ``sns``, ``sqs``, ``dynamodb``, ``sfn``,
  ``eventbridge``, ...), ACTION in camelCase (``putObject``). The Parameters
  are the action's request, in PascalCase even where the API's names are in
  camelCase; a JSON value given where the API takes text or bytes (an S3
  object's ``Body``, say) is sent as compact JSON text. The result is the
  response without its ``ResponseMetadata``, in PascalCase too, times as ISO
  8601 text and bodies as text.
* ``arn:aws:states:::sns:publish``, ``sqs:sendMessage``, ``dynamodb:putItem``,
  ``getItem``, ``updateItem``, ``deleteItem``: the same requests and results,
  plus ``SdkHttpMetadata`` and ``SdkResponseMetadata``.

Error names: see :mod:`.aws`.
"""
from __future__ import annotations

import re
from typing import Any

from ..asl import errors
from ..asl.errors import StatesError
from ..asl.tasks import Handler, TaskContext
from . import aws

_SNS = aws.ErrorNames("SNS", "AmazonSNSException", legacy_service="AmazonSNS")
_SQS = aws.ErrorNames("SQS", "AmazonSQSException", legacy_service="AmazonSQS")
_DYNAMODB = aws.ErrorNames("DynamoDB", "AmazonDynamoDBException", legacy_service="AmazonDynamoDBv2")

OPTIMIZED: dict[str, tuple[str, str, aws.ErrorNames]] = {
    "sns:publish": ("sns", "Publish", _SNS),
    "sqs:sendMessage": ("sqs", "SendMessage", _SQS),
    "dynamodb:putItem": ("dynamodb", "PutItem", _DYNAMODB),
    "dynamodb:getItem": ("dynamodb", "GetItem", _DYNAMODB),
    "dynamodb:updateItem": ("dynamodb", "UpdateItem", _DYNAMODB),
    "dynamodb:deleteItem": ("dynamodb", "DeleteItem", _DYNAMODB),
}

# Step Functions' service names (those of the SDK for Java 2) that are not boto3's without its dashes.
BOTO3_NAMES = {
    "cloudwatchevents": "events",
    "cloudwatchlogs": "logs",
    "configservice": "config",
    "costexplorer": "ce",
    "databasemigration": "dms",
    "directory": "ds",
    "elasticloadbalancing": "elb",
    "elasticloadbalancingv2": "elbv2",
    "elasticsearch": "es",
    "eventbridge": "events",
    "iotdataplane": "iot-data",
    "lexmodelbuilding": "lex-models",
    "marketplacemetering": "meteringmarketplace",
    "migrationhub": "mgh",
    "sfn": "stepfunctions",
}

_SDK = re.compile(r"^aws-sdk:(?P<service>[a-z0-9]+):(?P<action>[a-z][A-Za-z0-9]*)$")


def resolve(resource: str) -> Handler | None:
    name = aws.integration(resource)
    if name is None:
        return None
    if name in OPTIMIZED:
        service, operation, names = OPTIMIZED[name]
        return lambda payload, context: call_optimized(service, operation, names, payload, context)
    match = _SDK.match(name)
    if match:
        service, action = match["service"], match["action"]
        return lambda payload, context: call_sdk(resource, service, action, payload, context)
    return None


def call_sdk(resource: str, service: str, action: str, payload: Any, context: TaskContext) -> dict:
    """``aws-sdk:SERVICE:ACTION``."""
    name = boto3_name(service)
    if name is None:
        raise _unsupported(resource, f"there is no AWS service '{service}'")
    model = aws.service_model(name)
    operation = action[0].upper() + action[1:]
    if operation not in model.operation_names:
        raise _unsupported(resource, f"the service '{service}' has no action '{action}'")
    return _call(name, operation, aws.ErrorNames.for_sdk(model.service_id), payload, context)[0]


def call_optimized(service: str, operation: str, names: aws.ErrorNames, payload: Any, context: TaskContext) -> dict:
    """``sns:publish``, ``sqs:sendMessage``, ``dynamodb:*Item``."""
    result, response = _call(service, operation, names, payload, context)
    return aws.with_sdk_metadata(result, response)


def _call(service: str, operation: str, names: aws.ErrorNames, payload: Any,
          context: TaskContext) -> tuple[dict, dict]:
    """The result (as Step Functions shows it) and boto3's response."""
    from botocore import xform_name

    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise StatesError(errors.RUNTIME, "The Parameters of an AWS service task must be an object.")
    payload = with_idempotency_key(service, operation, payload, context)
    try:
        client = aws.client(service, timeout=context.timeout_seconds)
        model = client.meta.service_model.operation_model(operation)
        response = getattr(client, xform_name(operation))(**to_request(payload, model.input_shape))
    except Exception as error:
        raise aws.failure(error, names, context) from None
    return to_result(response, model.output_shape), response


#: (service, operation) -> the parameter naming the FIFO queue or topic a message goes to.
_FIFO_TARGETS = {("sqs", "SendMessage"): "QueueUrl", ("sns", "Publish"): "TopicArn"}


def with_idempotency_key(service: str, operation: str, payload: dict, context: TaskContext) -> dict:
    """A message to a FIFO queue or topic sent by a call that may be made again carries its key as
    ``MessageDeduplicationId`` (unless it has one), so SQS or SNS keeps one of the tries."""
    key = context.idempotency_key
    target = _FIFO_TARGETS.get((service, operation))
    if (key and target and str(payload.get(target, "")).endswith(".fifo")
            and "MessageDeduplicationId" not in payload):
        return {**payload, "MessageDeduplicationId": key}
    return payload


def to_request(value: Any, shape) -> Any:
    """Parameters as botocore takes them.

    Names are matched to the API's whichever their first letter's case (Step
    Functions writes ``TaskToken`` for the API's ``taskToken``); a JSON value
    given where the API takes text or bytes becomes compact JSON text.
    """
    if shape is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        names = {_pascal(name): name for name in shape.members}
        request = {}
        for key, item in value.items():
            name = key if key in shape.members else names.get(key, key)
            request[name] = to_request(item, shape.members.get(name))
        return request
    if kind == "list" and isinstance(value, list):
        return [to_request(item, shape.member) for item in value]
    if kind == "map" and isinstance(value, dict):
        return {key: to_request(item, shape.value) for key, item in value.items()}
    if kind in ("string", "blob") and value is not None:
        return aws.json_text(value)
    return value


def to_result(value: Any, shape) -> Any:
    """A response as Step Functions shows it: without ``ResponseMetadata``, names in PascalCase
    (the keys of maps as they are), times as ISO 8601 text, bytes and streams as text."""
    if shape is not None:
        kind = shape.type_name
        if kind == "structure" and isinstance(value, dict):
            return {_pascal(key): to_result(item, shape.members.get(key))
                    for key, item in value.items() if key != "ResponseMetadata"}
        if kind == "list" and isinstance(value, list):
            return [to_result(item, shape.member) for item in value]
        if kind == "map" and isinstance(value, dict):
            return {key: to_result(item, shape.value) for key, item in value.items()}
    if isinstance(value, dict):
        return aws.plain({key: item for key, item in value.items() if key != "ResponseMetadata"})
    return aws.plain(value)


def _pascal(name: str) -> str:
    return name[:1].upper() + name[1:]


_boto3_names: dict[str, str] = {}


def boto3_name(service: str) -> str | None:
    """boto3's name for a service as Step Functions names it: ``sfn`` is ``stepfunctions``, ``acmpca`` ``acm-pca``."""
    if not _boto3_names:
        _boto3_names.update({name.replace("-", ""): name for name in aws.session().get_available_services()})
    return BOTO3_NAMES.get(service) or _boto3_names.get(service)


def _unsupported(resource: str, why: str) -> StatesError:
    return StatesError(errors.RUNTIME, f"The resource '{resource}' is not supported: {why}.")
