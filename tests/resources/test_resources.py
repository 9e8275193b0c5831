"""Task resources: module handlers, AWS Lambda, HTTP APIs, AWS SDK and optimized integrations.

State machines run end to end with the default registry. AWS calls are answered by
botocore's Stubber (and any call that is not stubbed goes to a closed local port, never
the internet); HTTP calls go to a server on 127.0.0.1 that the tests start.
"""
from __future__ import annotations

import datetime
import io
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

import chalicelib.resources.registry
from chalicelib import resume, run
from chalicelib.asl import TaskFailed, VirtualClock
from chalicelib.resources import aws, aws_sdk, default_handlers, http, module_handler
from chalicelib.service import disallowed_resources

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FUNCTION = "arn:aws:lambda:eu-west-1:123456789012:function:adder"
HEADERS = {"content-type": "application/json", "x-amzn-requestid": "req-1"}


def go(definition: dict, input=None, **options) -> dict:
    return run(definition, {} if input is None else input, handlers=default_handlers(),
               clock=VirtualClock(), **options)


def task(resource: str, **fields) -> dict:
    """A one-Task machine; a Catch goes to a Pass state named Caught."""
    spec = {"Type": "Task", "Resource": resource, **fields}
    states = {"T": spec}
    if "Catch" in fields:
        spec["Next"] = "Done"
        states["Done"] = {"Type": "Succeed"}
        states["Caught"] = {"Type": "Pass", "End": True}
    else:
        spec["End"] = True
    return {"StartAt": "T", "States": states}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- module: handlers -------------------------------------------------------------------

@pytest.fixture
def modules(monkeypatch):
    """Register test handlers without leaving them behind."""
    default_handlers()  # registers the built-in handlers first, in the registry kept after the test
    monkeypatch.setattr(chalicelib.resources.registry, "_modules", dict(chalicelib.resources.registry._modules))


class OutOfStock(Exception):
    pass


def test_a_module_handlers_exception_is_a_task_failure_named_after_its_class(modules):
    @module_handler("reserve")
    def reserve(payload, context):
        raise OutOfStock(f"no {payload['item']} left")

    failed = go(task("module:reserve"), {"item": "chairs"})
    assert failed == {"status": "FAILED", "error": "OutOfStock", "cause": "no chairs left"}

    caught = go(task("module:reserve", Catch=[{"ErrorEquals": ["OutOfStock"], "ResultPath": "$.problem",
                                               "Next": "Caught"}]), {"item": "desks"})
    assert caught["status"] == "SUCCEEDED"
    assert caught["output"] == {"item": "desks", "problem": {"Error": "OutOfStock", "Cause": "no desks left"}}


def test_a_module_handler_names_its_error_with_task_failed_and_retry_applies(modules):
    attempts = []

    @module_handler("flaky")
    def flaky(payload, context):
        attempts.append(context.state)
        if len(attempts) < 3:
            raise TaskFailed("Backend.Busy", "try later")
        return {"ok": len(attempts)}

    result = go(task("module:flaky", Retry=[{"ErrorEquals": ["Backend.Busy"], "MaxAttempts": 2}]))
    assert result == {"status": "SUCCEEDED", "output": {"ok": 3}}
    assert attempts == ["T", "T", "T"]

    attempts.clear()
    exhausted = go(task("module:flaky", Retry=[{"ErrorEquals": ["Backend.Busy"], "MaxAttempts": 1}]))
    assert exhausted == {"status": "FAILED", "error": "Backend.Busy", "cause": "try later"}


def test_an_unknown_resource_has_no_handler():
    for resource in ("module:nothing", "arn:aws:states:::nothing:here", "https://example.com",
                     "arn:aws:lambda:us-east-1:123:function:short-account"):
        assert default_handlers().resolve(resource) is None, resource


# -- AWS: shared ----------------------------------------------------------------------

@pytest.fixture
def aws_env(monkeypatch):
    """Fake credentials and a region; an AWS call that is not stubbed reaches a closed local port."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(aws, "_sessions", [])
    monkeypatch.setattr(aws, "_clients", {})


@pytest.fixture
def stub(aws_env):
    """``stub(service, region=None, timeout=None)``: the Stubber of the client a task gets for those."""
    stubbers: list[Stubber] = []

    def for_client(service: str, region: str | None = None, timeout: float | None = None) -> Stubber:
        client = aws.client(service, region, timeout)
        for stubber in stubbers:
            if stubber.client is client:
                return stubber
        stubber = Stubber(client)
        stubber.activate()
        stubbers.append(stubber)
        return stubber

    yield for_client
    for stubber in stubbers:
        stubber.assert_no_pending_responses()
        stubber.deactivate()


def meta(request_id: str = "req-1", status: int = 200, headers: dict | None = None) -> dict:
    return {"RequestId": request_id, "HTTPStatusCode": status, "HTTPHeaders": headers or HEADERS}


def stream(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


def test_boto3_is_imported_only_when_a_task_calls_aws():
    script = (
        "import sys, app\n"
        "def loaded():\n"
        "    names = ('boto3', 'botocore', 'urllib.request', 'chalicelib.resources.aws', 'chalicelib.resources.http')\n"
        "    return sorted(name for name in names if name in sys.modules)\n"
        "print(loaded())\n"
        "from chalicelib.resources import default_handlers\n"
        "registry = default_handlers()\n"
        "for resource in ('arn:aws:lambda:us-east-1:123456789012:function:f', 'arn:aws:states:::lambda:invoke',\n"
        "                 'arn:aws:states:::http:invoke', 'arn:aws:states:::aws-sdk:s3:getObject',\n"
        "                 'arn:aws:states:::sns:publish', 'arn:aws:states:::dynamodb:putItem'):\n"
        "    assert registry.resolve(resource) is not None, resource\n"
        "print(loaded())\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    with_app, after_resolving = out.stdout.splitlines()
    assert with_app == "[]"
    assert after_resolving == "['chalicelib.resources.aws', 'chalicelib.resources.http']"


def test_clients_are_made_once_per_service_region_and_timeout_with_timeouts_and_one_attempt(aws_env):
    s3 = aws.client("s3")
    assert aws.client("s3") is s3
    assert aws.client("s3", "eu-west-1") is not s3
    assert aws.client("s3", "eu-west-1").meta.region_name == "eu-west-1"
    assert s3.meta.region_name == "us-east-1"
    assert s3.meta.config.read_timeout == aws.DEFAULT_TIMEOUT_SECONDS
    assert s3.meta.config.connect_timeout == aws.CONNECT_TIMEOUT_SECONDS
    assert s3.meta.config.retries["total_max_attempts"] == 1
    quick = aws.client("s3", timeout=3)
    assert quick is not s3 and quick.meta.config.read_timeout == 3 and quick.meta.config.connect_timeout == 3


@pytest.mark.parametrize("service_id, spelled", [
    # The service IDs botocore knows, spelled as the AWS SDK for Java 2 names its clients
    # (DynamoDbClient, SesV2Client, SfnClient, CloudWatchLogsClient, AcmPcaClient, ApiGatewayV2Client).
    ("DynamoDB", "DynamoDb"), ("SESv2", "SesV2"), ("SFN", "Sfn"), ("S3", "S3"), ("SNS", "Sns"),
    ("CloudWatch Logs", "CloudWatchLogs"), ("ACM PCA", "AcmPca"), ("EventBridge", "EventBridge"),
    ("ApiGatewayV2", "ApiGatewayV2"), ("EC2", "Ec2"), ("Lambda", "Lambda"),
])
def test_service_names_in_errors_are_spelled_as_step_functions_spells_them(service_id, spelled):
    assert aws.java_service_name(service_id) == spelled


def test_no_answer_from_aws_is_an_sdk_client_exception(aws_env):
    result = go(task("arn:aws:states:::aws-sdk:dynamodb:getItem",
                     Parameters={"TableName": "t", "Key": {"id": {"S": "1"}}}))
    assert result["status"] == "FAILED" and result["error"] == "DynamoDb.SdkClientException"
    lambda_result = go(task(FUNCTION))
    assert lambda_result["error"] == "Lambda.SdkClientException"


# -- AWS Lambda -------------------------------------------------------------------------

def test_a_function_arn_sends_the_input_to_the_function_in_its_region_and_returns_its_answer(stub):
    stub("lambda", "eu-west-1").add_response(
        "invoke", {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": stream(b'{"sum": 5}')},
        {"FunctionName": FUNCTION, "Payload": b'{"a":2,"b":3}'})
    result = go(task(FUNCTION, ResultPath="$.answer"), {"a": 2, "b": 3})
    assert result == {"status": "SUCCEEDED", "output": {"a": 2, "b": 3, "answer": {"sum": 5}}}


def test_a_functions_error_type_is_the_task_error_and_its_answer_the_cause(stub):
    answer = b'{"errorMessage": "card declined", "errorType": "PaymentError", "stackTrace": []}'
    lam = stub("lambda", "eu-west-1")
    lam.add_response("invoke", {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": stream(answer)})
    failed = go(task(FUNCTION))
    assert failed == {"status": "FAILED", "error": "PaymentError", "cause": answer.decode()}

    lam.add_response("invoke", {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": stream(answer)})
    caught = go(task(FUNCTION, Catch=[{"ErrorEquals": ["PaymentError"], "ResultPath": "$.error", "Next": "Caught"}]))
    assert caught["output"] == {"error": {"Error": "PaymentError", "Cause": answer.decode()}}


def test_a_function_failing_without_an_error_type_is_lambda_unknown_and_can_be_retried(stub):
    timed_out = b'{"errorMessage": "2024-05-01T12:00:00.000Z abc Task timed out after 3.00 seconds"}'
    lam = stub("lambda", "eu-west-1")
    lam.add_response("invoke", {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": stream(timed_out)})
    lam.add_response("invoke", {"StatusCode": 200, "Payload": stream(b'"done"')})
    result = go(task(FUNCTION, Retry=[{"ErrorEquals": ["Lambda.Unknown"], "MaxAttempts": 1}]))
    assert result == {"status": "SUCCEEDED", "output": "done"}

    lam.add_response("invoke", {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": stream(timed_out)})
    failed = go(task(FUNCTION))
    assert failed == {"status": "FAILED", "error": "Lambda.Unknown", "cause": timed_out.decode()}


def test_lambda_invoke_returns_what_step_functions_returns(stub):
    stub("lambda").add_response(
        "invoke",
        {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": stream(b'{"greeting": "hi Ann"}'),
         "ResponseMetadata": meta("req-7", headers={"content-type": "application/json", "x-amzn-requestid": "req-7",
                                                    "x-amz-executed-version": "$LATEST", "connection": "keep-alive"})},
        {"FunctionName": "greeter", "Payload": b'{"name":"Ann"}', "Qualifier": "live", "LogType": "None"})
    result = go(task("arn:aws:states:::lambda:invoke", Parameters={
        "FunctionName": "greeter", "Payload": {"name.$": "$.who"}, "Qualifier": "live", "LogType": "None"}),
        {"who": "Ann"})
    assert result["status"] == "SUCCEEDED"
    assert result["output"] == {
        "ExecutedVersion": "$LATEST",
        "Payload": {"greeting": "hi Ann"},
        "SdkHttpMetadata": {
            "AllHttpHeaders": {"Content-Type": ["application/json"], "x-amzn-RequestId": ["req-7"],
                               "X-Amz-Executed-Version": ["$LATEST"], "Connection": ["keep-alive"]},
            "HttpHeaders": {"Content-Type": "application/json", "x-amzn-RequestId": "req-7",
                            "X-Amz-Executed-Version": "$LATEST", "Connection": "keep-alive"},
            "HttpStatusCode": 200,
        },
        "SdkResponseMetadata": {"RequestId": "req-7"},
        "StatusCode": 200,
    }


def test_lambda_invoke_leaves_out_a_null_payload_and_invokes_asynchronously_when_asked(stub):
    lam = stub("lambda")
    lam.add_response("invoke", {"StatusCode": 202, "Payload": stream(b""), "ResponseMetadata": meta()},
                     {"FunctionName": "audit", "InvocationType": "Event"})
    result = go(task("arn:aws:states:::lambda:invoke", Parameters={
        "FunctionName": "audit", "Payload.$": "$.nothing", "InvocationType": "Event"}), {"nothing": None})
    assert result["output"]["StatusCode"] == 202 and result["output"]["Payload"] == ""


def test_lambda_invoke_calls_a_function_arn_in_its_region(stub):
    stub("lambda", "eu-west-1").add_response("invoke", {"StatusCode": 200, "Payload": stream(b"7")},
                                             {"FunctionName": FUNCTION, "Payload": b"[3,4]"})
    result = go(task("arn:aws:states:::lambda:invoke", Parameters={"FunctionName": FUNCTION, "Payload": [3, 4]},
                     ResultSelector={"sum.$": "$.Payload"}))
    assert result == {"status": "SUCCEEDED", "output": {"sum": 7}}


def test_lambda_invoke_function_error_cause_is_the_answer_as_compact_json(stub):
    answer = b'{"errorMessage": "bad input", "errorType": "ValueError", "requestId": "r"}'
    stub("lambda").add_response("invoke", {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": stream(answer)})
    failed = go(task("arn:aws:states:::lambda:invoke", Parameters={"FunctionName": "f", "Payload": {}}))
    assert failed == {"status": "FAILED", "error": "ValueError",
                      "cause": '{"errorMessage":"bad input","errorType":"ValueError","requestId":"r"}'}


def test_a_lambda_service_error_is_named_lambda_dot_exception(stub):
    stub("lambda").add_client_error(
        "invoke", "ResourceNotFoundException",
        "Function not found: arn:aws:lambda:us-east-1:123456789012:function:gone", 404,
        response_meta={"RequestId": "req-9"})
    caught = go(task("arn:aws:states:::lambda:invoke", Parameters={"FunctionName": "gone"},
                     Catch=[{"ErrorEquals": ["Lambda.ResourceNotFoundException"], "Next": "Caught"}]))
    assert caught["output"] == {
        "Error": "Lambda.ResourceNotFoundException",
        "Cause": "Function not found: arn:aws:lambda:us-east-1:123456789012:function:gone (Service: AWSLambda; "
                 "Status Code: 404; Error Code: ResourceNotFoundException; Request ID: req-9; Proxy: null)",
    }


def test_lambda_invoke_wait_for_task_token_sends_the_token_and_waits(stub):
    stub("lambda").add_response("invoke", {"StatusCode": 202, "Payload": stream(b"")},
                                {"FunctionName": "ask", "InvocationType": "Event",
                                 "Payload": b'{"token":"token-p1","q":"ok?"}'})
    definition = task("arn:aws:states:::lambda:invoke.waitForTaskToken", Parameters={
        "FunctionName": "ask", "InvocationType": "Event", "Payload": {"token.$": "$$.Task.Token", "q": "ok?"}})
    waiting = go(definition, token_factory=lambda point: f"token-{point}")
    assert waiting["status"] == "SUSPENDED"
    [point] = waiting["suspensions"]
    done = resume(definition, waiting["snapshot"], point["id"], {"approved": True}, clock=VirtualClock())
    assert done == {"status": "SUCCEEDED", "output": {"approved": True}}


# -- AWS SDK integrations -----------------------------------------------------------------

def test_s3_put_and_get_object(stub):
    s3 = stub("s3")
    s3.add_response("put_object", {"ETag": '"e1"', "ResponseMetadata": meta()},
                    {"Bucket": "reports", "Key": "r.json", "Body": '{"total":3,"ok":true}'})
    s3.add_response("get_object", {
        "Body": stream(b"hello there"), "ContentLength": 11, "ContentType": "text/plain", "ETag": '"e2"',
        "LastModified": datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.timezone.utc), "Metadata": {},
        "ResponseMetadata": meta()}, {"Bucket": "reports", "Key": "note.txt"})
    definition = {"StartAt": "Put", "States": {
        "Put": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:putObject", "ResultPath": "$.put",
                "Parameters": {"Bucket": "reports", "Key": "r.json", "Body.$": "$.report"}, "Next": "Get"},
        "Get": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:getObject", "ResultPath": "$.got",
                "Parameters": {"Bucket": "reports", "Key": "note.txt"}, "End": True}}}
    result = go(definition, {"report": {"total": 3, "ok": True}})
    assert result["status"] == "SUCCEEDED", result
    assert result["output"]["put"] == {"ETag": '"e1"'}
    assert result["output"]["got"] == {"Body": "hello there", "ContentLength": 11, "ContentType": "text/plain",
                                       "ETag": '"e2"', "LastModified": "2024-05-01T12:30:00Z", "Metadata": {}}


def test_s3_errors_are_named_as_step_functions_names_them(stub):
    s3 = stub("s3")
    s3.add_client_error("get_object", "NoSuchKey", "The specified key does not exist.", 404,
                        response_meta={"RequestId": "R1", "HostId": "H1"})
    caught = go(task("arn:aws:states:::aws-sdk:s3:getObject", Parameters={"Bucket": "b", "Key": "missing"},
                     Catch=[{"ErrorEquals": ["S3.NoSuchKeyException"], "Next": "Caught"}]))
    assert caught["output"] == {
        "Error": "S3.NoSuchKeyException",
        "Cause": "The specified key does not exist. (Service: S3, Status Code: 404, Request ID: R1, "
                 "Extended Request ID: H1) (SDK Attempt Count: 1)",
    }
    s3.add_client_error("get_object", "SlowDown", "Please reduce your request rate.", 503)  # not in S3's model
    slowed = go(task("arn:aws:states:::aws-sdk:s3:getObject", Parameters={"Bucket": "b", "Key": "k"}))
    assert slowed["error"] == "S3.S3Exception"


def test_sesv2_send_email(stub):
    ses = stub("sesv2")
    content = {"Simple": {"Subject": {"Data": "Hi"}, "Body": {"Text": {"Data": "Welcome"}}}}
    ses.add_response("send_email", {"MessageId": "m-1", "ResponseMetadata": meta()},
                     {"FromEmailAddress": "a@example.com", "Destination": {"ToAddresses": ["b@example.com"]},
                      "Content": content})
    ses.add_client_error("send_email", "BadRequestException", "Missing required field", 400)
    definition = task("arn:aws:states:::aws-sdk:sesv2:sendEmail", Parameters={
        "FromEmailAddress": "a@example.com", "Destination": {"ToAddresses.$": "$.to"}, "Content": content})
    assert go(definition, {"to": ["b@example.com"]}) == {"status": "SUCCEEDED", "output": {"MessageId": "m-1"}}
    failed = go(definition, {"to": ["b@example.com"]})
    assert failed["error"] == "SesV2.BadRequestException"


def test_sns_publish_through_the_sdk(stub):
    sns = stub("sns")
    sns.add_response("publish", {"MessageId": "m-2", "ResponseMetadata": meta()},
                     {"TopicArn": "arn:aws:sns:us-east-1:123456789012:news", "Message": "hello"})
    sns.add_client_error("publish", "NotFound", "Topic does not exist", 404)  # SNS's code for it
    definition = task("arn:aws:states:::aws-sdk:sns:publish",
                      Parameters={"TopicArn": "arn:aws:sns:us-east-1:123456789012:news", "Message": "hello"})
    assert go(definition) == {"status": "SUCCEEDED", "output": {"MessageId": "m-2"}}
    assert go(definition)["error"] == "Sns.NotFoundException"


def test_dynamodb_through_the_sdk(stub):
    ddb = stub("dynamodb")
    ddb.add_response("get_item", {"Item": {"id": {"S": "7"}, "n": {"N": "3"}}, "ResponseMetadata": meta()},
                     {"TableName": "things", "Key": {"id": {"S": "7"}}})
    ddb.add_client_error("put_item", "ResourceNotFoundException", "Requested resource not found", 400,
                         response_meta={"RequestId": "R2"})
    got = go(task("arn:aws:states:::aws-sdk:dynamodb:getItem",
                  Parameters={"TableName": "things", "Key": {"id": {"S": "7"}}}))
    assert got == {"status": "SUCCEEDED", "output": {"Item": {"id": {"S": "7"}, "n": {"N": "3"}}}}
    failed = go(task("arn:aws:states:::aws-sdk:dynamodb:putItem",
                     Parameters={"TableName": "nope", "Item": {"id": {"S": "1"}}}))
    assert failed == {"status": "FAILED", "error": "DynamoDb.ResourceNotFoundException",
                      "cause": "Requested resource not found (Service: DynamoDb, Status Code: 400, Request ID: R2) "
                               "(SDK Attempt Count: 1)"}


def test_step_functions_service_names_that_differ_from_boto3s(stub):
    # Step Functions' own API names its fields in camelCase; its aws-sdk integration takes and gives PascalCase.
    sfn = stub("stepfunctions")
    sfn.add_client_error("send_task_success", "InvalidToken", "Invalid Token: 'x'", 400)
    sfn.add_response("start_execution", {"executionArn": "arn:aws:states:us-east-1:123456789012:execution:m:e1",
                                         "startDate": datetime.datetime(2024, 5, 1, tzinfo=datetime.timezone.utc)},
                     {"stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:m", "input": '{"a":1}'})
    failed = go(task("arn:aws:states:::aws-sdk:sfn:sendTaskSuccess", Parameters={"TaskToken": "x", "Output": "{}"}))
    assert failed["error"] == "Sfn.InvalidTokenException"
    started = go(task("arn:aws:states:::aws-sdk:sfn:startExecution", Parameters={
        "StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:m", "Input": {"a": 1}}))
    assert started["output"] == {"ExecutionArn": "arn:aws:states:us-east-1:123456789012:execution:m:e1",
                                 "StartDate": "2024-05-01T00:00:00Z"}
    stub("events").add_response("put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}]})
    sent = go(task("arn:aws:states:::aws-sdk:eventbridge:putEvents", Parameters={
        "Entries": [{"Source": "shop", "DetailType": "order", "Detail": "{}"}]}))
    assert sent["output"] == {"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}]}


def test_unknown_sdk_services_and_actions_fail_at_run_time(aws_env):
    assert go(task("arn:aws:states:::aws-sdk:nosuchservice:doIt"))["error"] == "States.Runtime"
    assert go(task("arn:aws:states:::aws-sdk:s3:launchRocket"))["error"] == "States.Runtime"


def test_parameters_the_service_does_not_take_are_the_services_unmodeled_error(stub):
    failed = go(task("arn:aws:states:::aws-sdk:s3:getObject", Parameters={"Bucket": "b"}))  # no Key
    assert failed["error"] == "S3.S3Exception" and "Key" in failed["cause"]


def test_timeout_seconds_bounds_the_wait_for_an_aws_answer(aws_env, server, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url + "/stall")
    failed = go(task("arn:aws:states:::aws-sdk:dynamodb:getItem", TimeoutSeconds=1,
                     Parameters={"TableName": "t", "Key": {"id": {"S": "1"}}}))
    assert failed == {"status": "FAILED", "error": "States.Timeout", "cause": ""}


# -- optimized integrations -------------------------------------------------------------------

def test_sns_publish_sends_json_messages_as_text_and_adds_sdk_metadata(stub):
    stub("sns").add_response("publish", {"MessageId": "m-3", "ResponseMetadata": meta("req-3")},
                             {"TopicArn": "arn:aws:sns:us-east-1:123456789012:news", "Message": '{"text":"hi"}'})
    result = go(task("arn:aws:states:::sns:publish", Parameters={
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:news", "Message": {"text": "hi"}}))
    assert result["output"] == {
        "MessageId": "m-3",
        "SdkHttpMetadata": {"AllHttpHeaders": {"Content-Type": ["application/json"], "x-amzn-RequestId": ["req-1"]},
                            "HttpHeaders": {"Content-Type": "application/json", "x-amzn-RequestId": "req-1"},
                            "HttpStatusCode": 200},
        "SdkResponseMetadata": {"RequestId": "req-3"},
    }


def test_sqs_send_message_and_its_errors(stub):
    sqs = stub("sqs")
    sqs.add_response("send_message", {"MessageId": "m-4", "MD5OfMessageBody": "d41d", "ResponseMetadata": meta()},
                     {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/jobs", "MessageBody": "run"})
    sent = go(task("arn:aws:states:::sqs:sendMessage", Parameters={
        "QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/jobs", "MessageBody": "run"}))
    assert sent["output"]["MessageId"] == "m-4" and sent["output"]["MD5OfMessageBody"] == "d41d"
    assert sent["output"]["SdkResponseMetadata"] == {"RequestId": "req-1"}
    # SQS answers this error with its old query-protocol code and names the modeled error beside it.
    sqs.add_client_error("send_message", "AWS.SimpleQueueService.NonExistentQueue", "The queue does not exist.",
                         400, service_error_meta={"QueryErrorCode": "QueueDoesNotExist"})
    failed = go(task("arn:aws:states:::sqs:sendMessage", Parameters={"QueueUrl": "https://q/none", "MessageBody": "x"}))
    assert failed["error"] == "SQS.QueueDoesNotExistException"


def test_sqs_send_message_wait_for_task_token(stub):
    stub("sqs").add_response("send_message", {"MessageId": "m-5"},
                             {"QueueUrl": "https://q/jobs", "MessageBody": '{"job":"x","token":"token-p1"}'})
    definition = task("arn:aws:states:::sqs:sendMessage.waitForTaskToken", ResultPath="$.reply", Parameters={
        "QueueUrl": "https://q/jobs", "MessageBody": {"job": "x", "token.$": "$$.Task.Token"}})
    waiting = go(definition, {"job": "x"}, token_factory=lambda point: f"token-{point}")
    assert waiting["status"] == "SUSPENDED"
    done = resume(definition, waiting["snapshot"], waiting["suspensions"][0]["id"], {"done": 1}, clock=VirtualClock())
    assert done == {"status": "SUCCEEDED", "output": {"job": "x", "reply": {"done": 1}}}


def test_dynamodb_item_actions_and_their_errors(stub):
    ddb = stub("dynamodb")
    key = {"id": {"S": "a1"}}
    ddb.add_response("put_item", {"ResponseMetadata": meta()},
                     {"TableName": "t", "Item": {"id": {"S": "a1"}, "n": {"N": "1"}}})
    ddb.add_response("update_item", {"Attributes": {"n": {"N": "2"}}, "ResponseMetadata": meta()},
                     {"TableName": "t", "Key": key, "UpdateExpression": "SET n = n + :one",
                      "ExpressionAttributeValues": {":one": {"N": "1"}}, "ReturnValues": "UPDATED_NEW"})
    ddb.add_response("get_item", {"Item": {"id": {"S": "a1"}, "n": {"N": "2"}}, "ResponseMetadata": meta()},
                     {"TableName": "t", "Key": key})
    ddb.add_response("delete_item", {"ResponseMetadata": meta()}, {"TableName": "t", "Key": key})
    steps = [
        ("Put", "putItem", {"TableName": "t", "Item": {"id": {"S": "a1"}, "n": {"N": "1"}}}),
        ("Update", "updateItem", {"TableName": "t", "Key": key, "UpdateExpression": "SET n = n + :one",
                                  "ExpressionAttributeValues": {":one": {"N": "1"}}, "ReturnValues": "UPDATED_NEW"}),
        ("Get", "getItem", {"TableName": "t", "Key": key}),
        ("Delete", "deleteItem", {"TableName": "t", "Key": key}),
    ]
    states = {}
    for index, (name, action, parameters) in enumerate(steps):
        states[name] = {"Type": "Task", "Resource": f"arn:aws:states:::dynamodb:{action}", "Parameters": parameters,
                        "ResultSelector": {"body.$": "$"}, "ResultPath": f"$.{name}"}
        if index + 1 < len(steps):
            states[name]["Next"] = steps[index + 1][0]
        else:
            states[name]["End"] = True
    result = go({"StartAt": "Put", "States": states})
    assert result["status"] == "SUCCEEDED", result
    out = {name: value["body"] for name, value in result["output"].items()}
    assert out["Update"]["Attributes"] == {"n": {"N": "2"}}
    assert out["Get"]["Item"] == {"id": {"S": "a1"}, "n": {"N": "2"}}
    assert set(out["Put"]) == set(out["Delete"]) == {"SdkHttpMetadata", "SdkResponseMetadata"}

    ddb.add_client_error("put_item", "ConditionalCheckFailedException", "The conditional request failed", 400)
    ddb.add_client_error("put_item", "ValidationException", "One or more parameter values were invalid", 400,
                         response_meta={"RequestId": "R5"})
    put = task("arn:aws:states:::dynamodb:putItem", Parameters={"TableName": "t", "Item": {"id": {"S": "a1"}}})
    assert go(put)["error"] == "DynamoDB.ConditionalCheckFailedException"
    assert go(put) == {"status": "FAILED", "error": "DynamoDB.AmazonDynamoDBException",
                       "cause": "One or more parameter values were invalid (Service: AmazonDynamoDBv2; "
                                "Status Code: 400; Error Code: ValidationException; Request ID: R5; Proxy: null)"}


def test_optimized_integrations_resolve_only_their_actions():
    registry = default_handlers()
    for resource in ("arn:aws:states:::sns:publish", "arn:aws:states:::sqs:sendMessage",
                     "arn:aws:states:::dynamodb:putItem", "arn:aws:states:::dynamodb:getItem",
                     "arn:aws:states:::dynamodb:updateItem", "arn:aws:states:::dynamodb:deleteItem",
                     "arn:aws-us-gov:states:::sns:publish"):
        assert registry.resolve(resource) is not None, resource
    for resource in ("arn:aws:states:::sns:createTopic", "arn:aws:states:::dynamodb:scan"):
        assert registry.resolve(resource) is None, resource
    assert set(aws_sdk.OPTIMIZED) == {"sns:publish", "sqs:sendMessage", "dynamodb:putItem", "dynamodb:getItem",
                                      "dynamodb:updateItem", "dynamodb:deleteItem"}


# -- HTTP -----------------------------------------------------------------------------------

class Server:
    def __init__(self):
        self.requests: list[dict] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else None
                parts = urlsplit(self.path)
                server.requests.append({"method": self.command, "path": parts.path, "query": parse_qs(parts.query),
                                        "headers": dict(self.headers.items()), "body": body})
                if parts.path.startswith("/stall"):
                    server.release.wait(10)
                    return self.answer(200, "text/plain", b"late")
                if parts.path == "/json":
                    data = json.dumps({"method": self.command, "query": parse_qs(parts.query),
                                       "token": self.headers.get("X-Token")}).encode()
                    return self.answer(200, "application/json", data, {"X-Trace": "t1"})
                if parts.path == "/text":
                    return self.answer(200, "text/plain; charset=utf-8", "plain words \u2713".encode())
                if parts.path == "/created":
                    return self.answer(201, "application/problem+json", b'{"id": 9}')
                return self.answer(404, "application/json", b'{"message": "no such thing"}')

            def answer(self, status, content_type, data, headers=None):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # a client that gave up waiting
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("ALLOWED_HTTP_HOSTS", "127.0.0.1")  # the test's local endpoint (loopback is refused by default)
    running = Server()
    yield running
    running.close()


def test_http_get_with_query_parameters_and_headers_returns_the_parsed_json(server):
    result = go(task("arn:aws:states:::http:invoke", Parameters={
        "ApiEndpoint": server.url + "/json?fixed=1", "Method": "GET",
        "Headers": {"X-Token": "s3cret"}, "QueryParameters": {"q": "chairs", "tag": ["a", "b"], "n": 2},
        "Authentication": {"ConnectionArn": "arn:aws:events:us-east-1:123456789012:connection/api/1"}}))
    assert result["status"] == "SUCCEEDED", result
    output = result["output"]
    assert output["StatusCode"] == 200 and output["StatusText"] == "OK"
    assert output["Headers"]["content-type"] == ["application/json"]
    assert output["Headers"]["x-trace"] == ["t1"]
    assert output["ResponseBody"] == {"method": "GET", "token": "s3cret",
                                      "query": {"fixed": ["1"], "q": ["chairs"], "tag": ["a", "b"], "n": ["2"]}}


def test_http_bodies_objects_as_json_text_as_it_is(server):
    go(task("arn:aws:states:::http:invoke", Parameters={
        "ApiEndpoint": server.url + "/json", "Method": "POST", "RequestBody": {"item.$": "$.item", "count": 2}}),
       {"item": "desk"})
    go(task("arn:aws:states:::http:invoke", Parameters={
        "ApiEndpoint": server.url + "/json", "Method": "PUT", "RequestBody": "a=1&b=2",
        "Headers": {"Content-Type": "application/x-www-form-urlencoded"}}))
    go(task("arn:aws:states:::http:invoke", Parameters={
        "ApiEndpoint": server.url + "/json", "Method": "PATCH", "RequestBody": "just words"}))
    posted, put, patched = server.requests
    assert posted["method"] == "POST" and json.loads(posted["body"]) == {"item": "desk", "count": 2}
    assert posted["headers"]["Content-Type"].startswith("application/json")
    assert put["method"] == "PUT" and put["body"] == "a=1&b=2"
    assert put["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert patched["body"] == "just words" and patched["headers"]["Content-Type"].startswith("text/plain")


def test_http_text_and_other_json_responses(server):
    text = go(task("arn:aws:states:::http:invoke", Parameters={"ApiEndpoint": server.url + "/text", "Method": "GET"}))
    assert text["output"]["ResponseBody"] == "plain words \u2713"
    created = go(task("arn:aws:states:::http:invoke", Parameters={"ApiEndpoint": server.url + "/created",
                                                                  "Method": "POST", "RequestBody": {}}))
    assert created["output"]["StatusCode"] == 201 and created["output"]["ResponseBody"] == {"id": 9}


def test_http_status_outside_2xx_is_an_error_named_after_the_status(server):
    definition = task("arn:aws:states:::http:invoke", Parameters={"ApiEndpoint": server.url + "/gone", "Method": "GET"},
                      Retry=[{"ErrorEquals": ["States.Http.StatusCode.404"], "MaxAttempts": 2}],
                      Catch=[{"ErrorEquals": ["States.Http.StatusCode.404"], "Next": "Caught"}])
    caught = go(definition)
    assert caught["status"] == "SUCCEEDED"
    assert caught["output"]["Error"] == "States.Http.StatusCode.404"
    cause = json.loads(caught["output"]["Cause"])
    assert cause["StatusCode"] == 404 and cause["StatusText"] == "Not Found"
    assert cause["ResponseBody"] == {"message": "no such thing"}
    assert len(server.requests) == 3  # the call and two retries


def test_http_connection_refused_is_a_socket_error(monkeypatch):
    monkeypatch.setenv("ALLOWED_HTTP_HOSTS", "127.0.0.1")
    failed = go(task("arn:aws:states:::http:invoke",
                     Parameters={"ApiEndpoint": f"http://127.0.0.1:{closed_port()}/x", "Method": "GET"}))
    assert failed["status"] == "FAILED" and failed["error"] == "States.Http.Socket"


def test_http_no_answer_in_time_is_a_socket_error_or_the_tasks_timeout(server, monkeypatch):
    monkeypatch.setattr(http, "SOCKET_TIMEOUT_SECONDS", 0.2)
    stalled = go(task("arn:aws:states:::http:invoke",
                      Parameters={"ApiEndpoint": server.url + "/stall", "Method": "GET"}))
    assert stalled["status"] == "FAILED" and stalled["error"] == "States.Http.Socket"

    monkeypatch.setattr(http, "SOCKET_TIMEOUT_SECONDS", 60.0)
    timed_out = go(task("arn:aws:states:::http:invoke", TimeoutSeconds=1,
                        Parameters={"ApiEndpoint": server.url + "/stall", "Method": "GET"}))
    assert timed_out == {"status": "FAILED", "error": "States.Timeout", "cause": ""}


def test_http_parameters_are_checked():
    for parameters in ({"ApiEndpoint": "file:///etc/passwd", "Method": "GET"},
                       {"ApiEndpoint": "http://127.0.0.1/x", "Method": "FETCH"},
                       {"Method": "GET"}):
        failed = go(task("arn:aws:states:::http:invoke", Parameters=parameters))
        assert failed["error"] == "States.Runtime", parameters


def test_http_wait_for_task_token(server):
    definition = task("arn:aws:states:::http:invoke.waitForTaskToken", Parameters={
        "ApiEndpoint": server.url + "/json", "Method": "POST", "RequestBody": {"callback.$": "$$.Task.Token"}})
    waiting = go(definition, token_factory=lambda point: f"token-{point}")
    assert waiting["status"] == "SUSPENDED"
    assert json.loads(server.requests[0]["body"]) == {"callback": "token-p1"}


# -- which resources a stage allows ------------------------------------------------------------

def test_allowed_resources_patterns_cover_every_kind_and_the_wait_for_task_token_suffix():
    definition = {"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "Next": "M", "Branches": [{"StartAt": "A", "States": {
            "A": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:getObject.waitForTaskToken",
                  "End": True}}}]},
        "M": {"Type": "Map", "Next": "L", "ItemProcessor": {"StartAt": "B", "States": {
            "B": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken", "End": True}}}},
        "L": {"Type": "Task", "Resource": FUNCTION, "Next": "H"},
        "H": {"Type": "Task", "Resource": "arn:aws:states:::http:invoke", "End": True}}}

    def refused(*patterns):
        return [problem["state"] for problem in disallowed_resources(definition, patterns)]

    assert refused("module:*") == ["A", "B", "L", "H"]
    assert refused("arn:aws:states:::aws-sdk:*", "arn:aws:states:::lambda:invoke*",
                   "arn:aws:lambda:eu-west-1:123456789012:function:*", "arn:aws:states:::http:invoke") == []
    # A pattern without the suffix does not allow the waiting form of the resource.
    assert refused("arn:aws:states:::aws-sdk:*", "arn:aws:states:::lambda:invoke", FUNCTION,
                   "arn:aws:states:::http:invoke") == ["B"]
    # Patterns may name one service's actions, or one region's functions.
    assert refused("arn:aws:states:::aws-sdk:dynamodb:*", "arn:aws:states:::lambda:invoke*",
                   "arn:aws:lambda:us-east-1:*", "arn:aws:states:::http:invoke") == ["A", "L"]


def test_a_distributed_maps_reader_and_writer_are_checked_like_task_resources():
    """An ItemReader reads S3 and a ResultWriter writes it with the function's role: an inline definition
    needs ALLOWED_RESOURCES to name them, as for a Task."""
    definition = {"StartAt": "M", "States": {"M": {
        "Type": "Map", "End": True,
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
                       "Parameters": {"Bucket": "b", "Key": "k"}},
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "b"}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED"}, "StartAt": "P",
                          "States": {"P": {"Type": "Pass", "End": True}}}}}}
    fields = [problem["field"] for problem in disallowed_resources(definition, ("module:*",))]
    assert fields == ["ItemReader.Resource", "ResultWriter.Resource"]
    assert disallowed_resources(definition, ("arn:aws:states:::s3:*",)) == []


_SHOP_REPLY = {"method": "POST", "query": {}, "token": None}  # what the test server's /json answers


def test_order_notification_example_calls_the_shop_then_emails_the_customer(server, stub):
    from chalicelib.service import catalog

    ses = stub("sesv2")
    ses.add_response("send_email", {"MessageId": "m-42", "ResponseMetadata": meta()}, {
        "FromEmailAddress": "orders@example.com", "Destination": {"ToAddresses": ["kim@example.com"]},
        "Content": {"Simple": {"Subject": {"Data": "Your order 7 is confirmed"},
                               "Body": {"Text": {"Data": "Thank you! The shop answered: "
                                                         + json.dumps(_SHOP_REPLY, separators=(",", ":"))}}}}})
    result = go(catalog.load("order-notification"), {
        "webhook": server.url + "/json", "order": {"id": 7, "item": "desk"},
        "customer": "kim@example.com", "sender": "orders@example.com"})
    assert result["status"] == "SUCCEEDED", result
    assert result["output"]["email"] == {"messageId": "m-42"}
    assert result["output"]["shop"]["status"] == 200
    assert json.loads(server.requests[-1]["body"]) == {"id": 7, "item": "desk"}
