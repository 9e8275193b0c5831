"""The Step Functions API at ``POST /``: boto3's ``stepfunctions`` client through Chalice's test client.

Every answer a test gets is checked after the test (the ``answers`` fixture) by the one check of
``aws_clients``: botocore parses it, a success fits the operation's output shape in botocore's
model, an error is one the operation (or any operation) has, at AWS's status. Once the whole module
has run, every operation of README's table has answered a success and every error the table names
for it, and the OpenAPI document names every error code answered.
"""
from __future__ import annotations

import json
import os
import re
import shutil

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from chalicelib.service import fanout

from .aws_clients import (ACCOUNT, MODEL, REGION, answer_problems, assert_answers_fit, epoch, machine_arn,
                          through_test_client)
from .redrive_items import HUNDRED, items, rerun_only_the_broken  # noqa: F401 - items: a fixture

WORKER = {
    "StartAt": "Work",
    "States": {
        "Work": {"Type": "Task", "Resource": "module:increment.waitForTaskToken",
                 "Parameters": {"value": 1, "token.$": "$$.Task.Token"},
                 "HeartbeatSeconds": 60, "TimeoutSeconds": 3600,
                 "Catch": [{"ErrorEquals": ["Rejected"], "ResultPath": "$.why", "Next": "Rejected"}],
                 "End": True},
        "Rejected": {"Type": "Pass", "Result": "rejected", "ResultPath": "$.outcome", "End": True},
    },
}


@pytest.fixture
def machines(tmp_path, monkeypatch):
    """The shipped state machines plus ``worker`` (a task waiting for its token)."""
    folder = tmp_path / "state_machines"
    shutil.copytree("state_machines", folder)
    (folder / "worker.json").write_text(json.dumps(WORKER))
    monkeypatch.setenv("STATE_MACHINES_DIR", str(folder))
    return folder


def readme_operations() -> dict[str, set[str]]:
    """The operations of README's table of the Step Functions API and the errors it names for each."""
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "README.md"), encoding="utf-8") as handle:
        section = handle.read().split("## Use it from the AWS CLI / boto3", 1)[1].split("\n## ", 1)[0]
    table: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        errors = re.findall(r"`([A-Z][A-Za-z]+)`", cells[2])
        for operation in re.findall(r"`([A-Z][A-Za-z]+)`", cells[0]):
            table[operation] = set(errors)
    return table


#: Every answer of this module's tests: (operation, status, error code or None).
ANSWERED: list[tuple[str, int, str | None]] = []


@pytest.fixture(scope="module", autouse=True)
def every_operation_and_its_errors_answered(request):
    """Once the whole module has run: each operation of README's table answered a success and each error
    the table names for it, and the OpenAPI document names each error code at the status it came with."""
    ANSWERED.clear()
    yield
    module_tests = {item.nodeid for item in request.node.collect()}
    if not module_tests <= {item.nodeid for item in request.session.items}:
        return  # only some tests were selected: nothing to say about all of them
    from chalicelib.api import openapi

    answered: dict[str, set] = {}
    for operation, status, code in ANSWERED:
        answered.setdefault(operation, set()).add(code if status != 200 else 200)
    missing = {operation: sorted(str(code) for code in {200, *errors} - answered.get(operation, set()))
               for operation, errors in readme_operations().items()}
    never = {operation: codes for operation, codes in missing.items() if codes}
    assert not never, f"never answered: {never}"
    assert len(missing) >= 19
    documented = openapi.document()["paths"]["/"]["post"]["responses"]
    undocumented = {(code, status) for _, status, code in ANSWERED
                    if code and code not in json.dumps(documented.get(str(status), {}))}
    assert not undocumented, "answered, but not in the OpenAPI document"


@pytest.fixture
def answers():
    collected: list = []
    yield collected
    assert_answers_fit(collected)
    ANSWERED.extend((a.operation, a.status, (a.json or {}).get("__type") if a.status != 200 else None)
                    for a in collected)


@pytest.fixture
def sfn(client, machines, answers):
    return through_test_client(client, answers=answers)


@pytest.fixture
def sync(client, machines, answers):
    """A client for StartSyncExecution, whose endpoint botocore would prefix with ``sync-``."""
    return through_test_client(client, answers=answers, config=Config(
        inject_host_prefix=False, retries={"total_max_attempts": 1}))


@pytest.fixture
def unchecked(client, machines, answers):
    """A client that sends what it is given (botocore's own checks off), to reach the server's."""
    return through_test_client(client, answers=answers,
                               config=Config(parameter_validation=False, retries={"total_max_attempts": 1}))


def code_of(call, *args, **kwargs) -> str:
    with pytest.raises(ClientError) as raised:
        call(*args, **kwargs)
    return raised.value.response["Error"]["Code"]


def status_of(call, *args, **kwargs) -> int:
    with pytest.raises(ClientError) as raised:
        call(*args, **kwargs)
    return raised.value.response["ResponseMetadata"]["HTTPStatusCode"]


def rest_document(client, name: str) -> dict:
    return json.loads(client.http.get(f"/executions/{name}").body)


def token_of(client, name: str) -> str:
    [waiting] = rest_document(client, name)["continuations"]
    return waiting["id"]


# -- executions ------------------------------------------------------------------------------------

def test_start_describe_and_answer_the_prototype_through_boto3(sfn, client):
    started = sfn.start_execution(stateMachineArn=machine_arn("incsquare"), name="first",
                                  input=json.dumps({"value": 6}))
    assert started["executionArn"] == f"arn:aws:states:{REGION}:{ACCOUNT}:execution:incsquare:first"
    described = sfn.describe_execution(executionArn=started["executionArn"])
    assert described["status"] == "RUNNING"  # suspended, in AWS's words
    assert described["name"] == "first" and described["stateMachineArn"] == machine_arn("incsquare")
    assert json.loads(described["input"]) == {"value": 6}
    assert described["startDate"] == started["startDate"] and "stopDate" not in described
    rest = rest_document(client, "first")
    assert abs(epoch(described["startDate"]) - epoch_of_iso(rest["startDate"])) < 0.001

    sfn.send_task_success(taskToken=token_of(client, "first"), output=json.dumps({"note": "hi"}))
    done = sfn.describe_execution(executionArn=started["executionArn"])
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"]) == {"value": 50, "note": "hi"}  # merged into the Suspend's input
    assert done["stopDate"] >= done["startDate"]


def epoch_of_iso(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_an_execution_without_a_name_is_named_by_its_id(sfn, client):
    started = sfn.start_execution(stateMachineArn=machine_arn("incsquare"), input='{"value": 2}')
    name = started["executionArn"].rsplit(":", 1)[1]
    assert rest_document(client, name)["executionId"] == name
    assert sfn.describe_execution(executionArn=started["executionArn"])["name"] == name


def test_starting_is_idempotent_by_name(sfn, client):
    arn = machine_arn("incsquare")
    first = sfn.start_execution(stateMachineArn=arn, name="once", input='{"value": 3}')
    again = sfn.start_execution(stateMachineArn=arn, name="once", input='{ "value" : 3 }')
    assert (again["executionArn"], again["startDate"]) == (first["executionArn"], first["startDate"])
    assert len(rest_document(client, "once")["continuations"]) == 1
    assert code_of(sfn.start_execution, stateMachineArn=arn, name="once", input='{"value": 4}') \
        == "ExecutionAlreadyExists"
    assert code_of(sfn.start_execution, stateMachineArn=machine_arn("worker"), name="once") \
        == "ExecutionAlreadyExists"


@pytest.mark.parametrize("fields,code", [
    ({"stateMachineArn": machine_arn("nope")}, "StateMachineDoesNotExist"),
    ({"stateMachineArn": "arn:aws:states:eu-west-1:111111111111:stateMachine:incsquare"}, "StateMachineDoesNotExist"),
    ({"stateMachineArn": "incsquare"}, "InvalidArn"),
    ({"stateMachineArn": f"arn:aws:states:{REGION}:{ACCOUNT}:execution:incsquare:x"}, "InvalidArn"),
    ({"stateMachineArn": machine_arn("incsquare"), "name": "has space"}, "InvalidName"),
    ({"stateMachineArn": machine_arn("incsquare"), "name": "a/b"}, "InvalidName"),
    ({"stateMachineArn": machine_arn("incsquare"), "input": "{not json"}, "InvalidExecutionInput"),
])
def test_start_errors(sfn, fields, code):
    assert code_of(sfn.start_execution, **fields) == code


def test_the_server_checks_requests_against_the_model(unchecked):
    assert code_of(unchecked.start_execution) == "ValidationException"
    assert code_of(unchecked.start_execution, stateMachineArn=7) == "ValidationException"
    assert code_of(unchecked.describe_execution, executionArn="") == "ValidationException"
    assert code_of(unchecked.send_task_success, taskToken="x" * 30) == "ValidationException"


@pytest.mark.parametrize("arn,code", [
    (f"arn:aws:states:{REGION}:{ACCOUNT}:execution:incsquare:never-started", "ExecutionDoesNotExist"),
    (f"arn:aws:states:{REGION}:{ACCOUNT}:execution:incsquare", "InvalidArn"),
    ("not-an-arn", "InvalidArn"),
])
def test_describe_errors(sfn, arn, code):
    assert code_of(sfn.describe_execution, executionArn=arn) == code


@pytest.mark.parametrize("operation,member,others", [
    ("stop_execution", "executionArn", {}),
    ("get_execution_history", "executionArn", {}),
    ("describe_state_machine_for_execution", "executionArn", {}),
    ("delete_state_machine", "stateMachineArn", {}),
    ("list_executions", "stateMachineArn", {}),
    ("tag_resource", "resourceArn", {"tags": []}),
    ("untag_resource", "resourceArn", {"tagKeys": []}),
    ("list_tags_for_resource", "resourceArn", {}),
    ("start_sync_execution", "stateMachineArn", {}),
])
@pytest.mark.parametrize("arn", ["not-an-arn", f"arn:aws:states:{REGION}:{ACCOUNT}:activity:x:y",
                                 f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:"])
def test_a_malformed_arn_is_invalid_arn(sync, operation, member, others, arn):
    assert code_of(getattr(sync, operation), **{member: arn, **others}) == "InvalidArn"


def test_an_execution_arn_must_name_its_own_state_machine(sfn):
    started = sfn.start_execution(stateMachineArn=machine_arn("incsquare"), name="mine", input='{"value": 1}')
    other = started["executionArn"].replace(":incsquare:", ":approval:")
    assert code_of(sfn.describe_execution, executionArn=other) == "ExecutionDoesNotExist"


def test_stop_aborts_and_closes_the_token(sfn, client):
    started = sfn.start_execution(stateMachineArn=machine_arn("worker"), name="stopped")
    token = token_of(client, "stopped")
    stopped = sfn.stop_execution(executionArn=started["executionArn"], error="Cancelled", cause="not needed")
    described = sfn.describe_execution(executionArn=started["executionArn"])
    assert described["status"] == "ABORTED"
    assert (described["error"], described["cause"]) == ("Cancelled", "not needed")
    assert described["stopDate"] == stopped["stopDate"]
    assert code_of(sfn.send_task_success, taskToken=token, output="{}") == "TaskTimedOut"
    # stopping an ended execution again changes nothing and answers when it ended
    assert sfn.stop_execution(executionArn=started["executionArn"])["stopDate"] == stopped["stopDate"]
    assert code_of(sfn.stop_execution, executionArn=started["executionArn"].replace("stopped", "other")) \
        == "ExecutionDoesNotExist"


def test_stop_without_error_or_cause(sfn):
    started = sfn.start_execution(stateMachineArn=machine_arn("incsquare"), input='{"value": 1}')
    sfn.stop_execution(executionArn=started["executionArn"])
    assert sfn.describe_execution(executionArn=started["executionArn"])["status"] == "ABORTED"


# -- task tokens -------------------------------------------------------------------------------------

def test_a_task_token_from_the_task_is_answered_with_send_task_success(sfn, client):
    started = sfn.start_execution(stateMachineArn=machine_arn("worker"), name="work", input='{"job": 1}')
    document = rest_document(client, "work")
    [waiting] = document["continuations"]
    assert waiting["kind"] == "task-token"
    sfn.send_task_success(taskToken=waiting["id"], output=json.dumps({"result": [1, 2]}))
    done = sfn.describe_execution(executionArn=started["executionArn"])
    assert (done["status"], json.loads(done["output"])) == ("SUCCEEDED", {"result": [1, 2]})


def test_sending_a_token_twice_is_task_timed_out_while_rest_replays(sfn, client):
    sfn.start_execution(stateMachineArn=machine_arn("worker"), name="twice")
    token = token_of(client, "twice")
    sfn.send_task_success(taskToken=token, output='{"n": 1}')
    assert code_of(sfn.send_task_success, taskToken=token, output='{"n": 1}') == "TaskTimedOut"
    assert code_of(sfn.send_task_success, taskToken=token, output='{"n": 2}') == "TaskTimedOut"
    assert code_of(sfn.send_task_failure, taskToken=token, error="E") == "TaskTimedOut"
    assert code_of(sfn.send_task_heartbeat, taskToken=token) == "TaskTimedOut"
    # REST keeps its own rule: the same answer (the same bytes) again is a replay
    response = client.http.post(f"/continuations/{token}", headers={"Content-Type": "application/json"},
                                body='{"n": 1}')
    assert response.status_code == 200 and json.loads(response.body)["replay"] is True


def test_a_token_answered_over_rest_is_task_timed_out_here(sfn, client):
    sfn.start_execution(stateMachineArn=machine_arn("worker"), name="rest-first")
    token = token_of(client, "rest-first")
    response = client.http.post(f"/continuations/{token}", headers={"Content-Type": "application/json"},
                                body='{"ok": true}')
    assert response.status_code == 200
    assert code_of(sfn.send_task_success, taskToken=token, output='{"ok": true}') == "TaskTimedOut"


def test_send_task_failure_fails_the_task_and_catch_applies(sfn, client):
    started = sfn.start_execution(stateMachineArn=machine_arn("worker"), name="failing", input='{"job": 2}')
    sfn.send_task_failure(taskToken=token_of(client, "failing"), error="Rejected", cause="no capacity")
    done = sfn.describe_execution(executionArn=started["executionArn"])
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"]) == {"job": 2, "why": {"Error": "Rejected", "Cause": "no capacity"},
                                          "outcome": "rejected"}


def test_send_task_failure_without_a_caught_error_fails_the_execution(sfn, client):
    started = sfn.start_execution(stateMachineArn=machine_arn("worker"), name="uncaught")
    sfn.send_task_failure(taskToken=token_of(client, "uncaught"))
    done = sfn.describe_execution(executionArn=started["executionArn"])
    assert (done["status"], done["error"]) == ("FAILED", "States.TaskFailed")


def test_send_task_heartbeat_moves_the_heartbeat_deadline(sfn, client):
    sfn.start_execution(stateMachineArn=machine_arn("worker"), name="beating")
    token = token_of(client, "beating")
    before = json.loads(client.http.get(f"/continuations/{token}").body)
    assert sfn.send_task_heartbeat(taskToken=token)["ResponseMetadata"]["HTTPStatusCode"] == 200
    history = rest_document(client, "beating")["history"]
    assert [e["type"] for e in history].count("TaskHeartbeat") == 1
    assert json.loads(client.http.get(f"/continuations/{token}").body)["status"] == before["status"] == "waiting"


@pytest.mark.parametrize("token,code", [
    ("short", "InvalidToken"),
    ("not a token at all, with spaces!!", "InvalidToken"),
    ("AAAAbbbbccccddddeeeeffffgg", "TaskDoesNotExist"),  # well formed, never issued
])
def test_token_errors(sfn, token, code):
    assert code_of(sfn.send_task_success, taskToken=token, output="{}") == code
    assert code_of(sfn.send_task_failure, taskToken=token) == code
    assert code_of(sfn.send_task_heartbeat, taskToken=token) == code


def test_output_that_is_not_json_is_invalid_output(sfn, client):
    sfn.start_execution(stateMachineArn=machine_arn("worker"), name="bad-output")
    token = token_of(client, "bad-output")
    assert code_of(sfn.send_task_success, taskToken=token, output="{nope") == "InvalidOutput"
    assert rest_document(client, "bad-output")["status"] == "SUSPENDED"


def test_an_answer_that_does_not_fit_the_question_is_invalid_output(sfn, client):
    started = sfn.start_execution(stateMachineArn=machine_arn("approval"), name="asking", input=json.dumps(
        {"item": "laptop", "requester": "ann", "reason": "broken", "approver": "boss@example.com"}))
    token = token_of(client, "asking")
    assert code_of(sfn.send_task_success, taskToken=token, output='{"decision": 42}') == "InvalidOutput"
    sfn.send_task_success(taskToken=token, output='{"decision": "approve"}')
    assert sfn.describe_execution(executionArn=started["executionArn"])["status"] != "FAILED"


@pytest.mark.parametrize("task,output,expected", [
    # module:suspend without ResultPath: deep-merged into the task's input, then OutputPath
    ({"Resource": "module:suspend", "OutputPath": "$.order"}, {"order": {"ok": True}},
     {"id": 7, "lines": [1, 2], "ok": True}),
    # module:suspend with a ResultPath: the task's result, placed there
    ({"Resource": "module:suspend", "ResultPath": "$.answer"}, {"ok": True},
     {"order": {"id": 7, "lines": [1, 2]}, "answer": {"ok": True}}),
    # .waitForTaskToken: the task's result: ResultSelector, ResultPath, OutputPath
    ({"Resource": "module:increment.waitForTaskToken", "Parameters": {"value": 1, "token.$": "$$.Task.Token"},
      "ResultSelector": {"seen.$": "$.ok"}, "ResultPath": "$.order.result", "OutputPath": "$.order"},
     {"ok": True, "dropped": 1}, {"id": 7, "lines": [1, 2], "result": {"seen": True}}),
    # .waitForTaskToken without ResultPath: the output replaces the input
    ({"Resource": "module:increment.waitForTaskToken", "Parameters": {"value": 1, "token.$": "$$.Task.Token"}},
     {"ok": True}, {"ok": True}),
])
def test_what_send_task_success_output_does_for_each_kind_of_task(sfn, client, machines, task, output, expected):
    (machines / "kind.json").write_text(json.dumps({"StartAt": "T", "States": {
        "T": {"Type": "Task", "End": True, **task}}}))
    started = sfn.start_execution(stateMachineArn=machine_arn("kind"), name="of-a-kind",
                                  input=json.dumps({"order": {"id": 7, "lines": [1, 2]}}))
    sfn.send_task_success(taskToken=token_of(client, "of-a-kind"), output=json.dumps(output))
    done = sfn.describe_execution(executionArn=started["executionArn"])
    assert (done["status"], json.loads(done["output"])) == ("SUCCEEDED", expected)


def test_an_event_wait_is_an_invalid_token(sfn, client, machines):
    (machines / "awaits.json").write_text(json.dumps({"StartAt": "W", "States": {
        "W": {"Type": "Task", "Resource": "module:event", "Parameters": {"CorrelationKey": "k-1"}, "End": True}}}))
    sfn.start_execution(stateMachineArn=machine_arn("awaits"), name="awaiting")
    [waiting] = rest_document(client, "awaiting")["continuations"]
    assert waiting["kind"] == "event"
    assert code_of(sfn.send_task_success, taskToken=waiting["id"], output="{}") == "InvalidToken"
    assert code_of(sfn.send_task_failure, taskToken=waiting["id"]) == "InvalidToken"
    assert rest_document(client, "awaiting")["status"] == "SUSPENDED"


def test_a_child_continuation_is_an_invalid_token(sfn, client):
    sfn.start_execution(stateMachineArn=machine_arn("purchase"), name="parent",
                        input=json.dumps({"item": "chair", "requester": "ria", "reason": "broken"}))
    [waiting] = rest_document(client, "parent")["continuations"]
    assert waiting["kind"] == "child"
    assert code_of(sfn.send_task_success, taskToken=waiting["id"], output="{}") == "InvalidToken"


# -- the protocol itself -----------------------------------------------------------------------------

def test_an_unknown_operation_and_a_bad_body_are_aws_errors(client, machines):
    for target, body, code in [("AWSStepFunctions.Nope", "{}", "UnknownOperationException"),
                               ("Other.StartExecution", "{}", "UnknownOperationException"),
                               ("AWSStepFunctions.DescribeExecution", "{nope", "SerializationException"),
                               ("AWSStepFunctions.DescribeExecution", "[1]", "SerializationException")]:
        response = client.http.post("/", body=body, headers={
            "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": target})
        assert (response.status_code, json.loads(response.body)["__type"]) == (400, code)
        assert not answer_problems(MODEL, target.rsplit(".", 1)[1], response.status_code, response.headers,
                                   response.body)


def test_refused_at_the_door_in_aws_shape(client, machines, answers, monkeypatch):
    """A header HTTP does not allow, or a host the stage does not serve: refused before any handler, as
    AWS refuses, so the SDK reads the code."""
    response = client.http.post("/", body="{}", headers={
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AWSStepFunctions.ListStateMachines",
        "X-Note": "a\x1bb"})
    assert (response.status_code, json.loads(response.body)["__type"]) == (400, "ValidationException")
    assert "x-note" in json.loads(response.body)["message"].lower()
    assert not answer_problems(MODEL, "ListStateMachines", response.status_code, response.headers, response.body)
    monkeypatch.setenv("TRUSTED_HOSTS", "approvals.example.com")  # boto3 sends Host: sfn.test
    with pytest.raises(ClientError) as raised:
        through_test_client(client, answers=answers).list_state_machines()
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "TRUSTED_HOSTS" in raised.value.response["Error"]["Message"]


def test_without_x_amz_target_post_slash_is_still_the_prototype(client):
    response = client.http.post("/?input=6", headers={"Content-Type": "application/json"},
                                body=open("state_machines/incsquare.json").read())
    assert response.status_code == 200 and json.loads(response.body)["value"] == 49


def test_with_an_api_key_the_protocol_needs_it_but_task_tokens_do_not(client, machines, answers, monkeypatch):
    monkeypatch.setenv("API_KEY", "stage-key")
    monkeypatch.setenv("PUBLIC_BASE_URL", "http://localhost")  # a keyed stage needs a source of links
    sfn = through_test_client(client, answers=answers)
    assert code_of(sfn.start_execution, stateMachineArn=machine_arn("worker"), name="keyed") \
        == "MissingAuthenticationTokenException"
    assert status_of(sfn.start_execution, stateMachineArn=machine_arn("worker"), name="keyed") == 403
    keyed = through_test_client(client, answers=answers)
    keyed.meta.events.register("before-sign.sfn", lambda request, **_: request.headers.add_header(
        "x-api-key", "stage-key"))
    keyed.start_execution(stateMachineArn=machine_arn("worker"), name="keyed")
    monkeypatch.delenv("API_KEY")
    token = token_of(client, "keyed")
    monkeypatch.setenv("API_KEY", "stage-key")
    monkeypatch.setenv("PUBLIC_BASE_URL", "http://localhost")  # a keyed stage needs a source of links
    sfn.send_task_success(taskToken=token, output="{}")  # the token alone
    wrong = through_test_client(client, answers=answers)
    wrong.meta.events.register("before-sign.sfn", lambda request, **_: request.headers.add_header(
        "x-api-key", "wrong"))
    assert status_of(wrong.describe_execution,
                     executionArn=f"arn:aws:states:{REGION}:{ACCOUNT}:execution:worker:keyed") == 403


def test_region_and_account_come_from_the_stage(client, machines, answers, monkeypatch):
    monkeypatch.setenv("STATES_REGION", "eu-central-1")
    monkeypatch.setenv("STATES_ACCOUNT_ID", "123456789012")
    sfn = through_test_client(client, answers=answers)
    arn = "arn:aws:states:eu-central-1:123456789012:stateMachine:incsquare"
    started = sfn.start_execution(stateMachineArn=arn, name="elsewhere", input='{"value": 1}')
    assert started["executionArn"] == "arn:aws:states:eu-central-1:123456789012:execution:incsquare:elsewhere"
    assert code_of(sfn.start_execution, stateMachineArn=machine_arn("incsquare")) == "StateMachineDoesNotExist"


# -- Signature Version 4 -----------------------------------------------------------------------------

@pytest.fixture
def signed(client, machines, answers, monkeypatch):
    """A stage with AWS credentials configured: the protocol needs a valid SigV4 by one of them."""
    monkeypatch.setenv("AWS_ACCESS_KEYS", "AKIDSTAGE:stage-secret, AKIDOTHER:other-secret")
    return lambda **kwargs: through_test_client(client, answers=answers, **kwargs)


def test_a_correct_signature_passes(signed):
    sfn = signed(key="AKIDSTAGE", secret="stage-secret")
    started = sfn.start_execution(stateMachineArn=machine_arn("incsquare"), name="signed", input='{"value": 1}')
    assert signed(key="AKIDOTHER", secret="other-secret").describe_execution(
        executionArn=started["executionArn"])["status"] == "RUNNING"


@pytest.mark.parametrize("key,secret,code", [
    ("AKIDUNKNOWN", "stage-secret", "UnrecognizedClientException"),
    ("AKIDSTAGE", "wrong-secret", "InvalidSignatureException"),
    ("AKIDSTAGE", "other-secret", "InvalidSignatureException"),
])
def test_a_wrong_key_or_secret_is_403(signed, key, secret, code):
    sfn = signed(key=key, secret=secret)
    assert code_of(sfn.start_execution, stateMachineArn=machine_arn("incsquare")) == code
    assert status_of(sfn.start_execution, stateMachineArn=machine_arn("incsquare")) == 403


def test_an_altered_body_is_403(signed):
    sfn = signed(key="AKIDSTAGE", secret="stage-secret")

    def alter(request, **_):  # after signing, before sending: another input
        assert b'value\\": 1}' in request.body
        request.body = request.body.replace(b'value\\": 1}', b'value\\": 2}')

    sfn.meta.events.register_first("before-send.sfn", alter)
    with pytest.raises(ClientError) as raised:
        sfn.start_execution(stateMachineArn=machine_arn("incsquare"), name="altered", input='{"value": 1}')
    assert raised.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_an_altered_signed_header_is_403(signed):
    sfn = signed(key="AKIDSTAGE", secret="stage-secret")

    def alter(request, **_):
        request.headers["X-Amz-Target"] = "AWSStepFunctions.StopExecution"

    sfn.meta.events.register_first("before-send.sfn", alter)
    assert code_of(sfn.describe_execution,
                   executionArn=f"arn:aws:states:{REGION}:{ACCOUNT}:execution:incsquare:x") \
        == "InvalidSignatureException"


@pytest.mark.parametrize("offset", [-301, 301])
def test_a_date_outside_five_minutes_is_403(signed, monkeypatch, offset):
    import time

    from chalicelib.api import sigv4

    monkeypatch.setattr(sigv4, "clock", lambda: time.time() - offset)  # the server's clock, not the client's
    sfn = signed(key="AKIDSTAGE", secret="stage-secret")
    with pytest.raises(ClientError) as raised:
        sfn.start_execution(stateMachineArn=machine_arn("incsquare"))
    error = raised.value.response["Error"]
    assert (error["Code"], raised.value.response["ResponseMetadata"]["HTTPStatusCode"]) \
        == ("InvalidSignatureException", 403)
    assert error["Message"].startswith("Signature expired")


def test_within_the_window_a_skewed_clock_passes(signed, monkeypatch):
    import time

    from chalicelib.api import sigv4

    monkeypatch.setattr(sigv4, "clock", lambda: time.time() + 290)
    signed(key="AKIDSTAGE", secret="stage-secret").start_execution(stateMachineArn=machine_arn("incsquare"))


def test_an_unsigned_request_is_missing_authentication(signed, client):
    from botocore import UNSIGNED

    sfn = signed(config=Config(signature_version=UNSIGNED, retries={"total_max_attempts": 1}))
    assert code_of(sfn.start_execution, stateMachineArn=machine_arn("incsquare")) \
        == "MissingAuthenticationTokenException"
    response = client.http.post("/", body="{}", headers={
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AWSStepFunctions.StartExecution",
        "Authorization": "AWS4-HMAC-SHA256 nonsense"})
    assert (response.status_code, json.loads(response.body)["__type"]) == (403, "IncompleteSignatureException")
    assert not answer_problems(MODEL, "StartExecution", response.status_code, response.headers, response.body)


def test_with_credentials_configured_task_tokens_and_the_api_key_still_work(signed, client, monkeypatch):
    started = signed(key="AKIDSTAGE", secret="stage-secret").start_execution(
        stateMachineArn=machine_arn("worker"), name="tokened")
    monkeypatch.setenv("API_KEY", "stage-key")
    monkeypatch.setenv("PUBLIC_BASE_URL", "http://localhost")  # a keyed stage needs a source of links
    document = json.loads(client.http.get("/executions/tokened", headers={"x-api-key": "stage-key"}).body)
    token = document["continuations"][0]["id"]
    unsigned = signed(key="AKIDNOBODY", secret="nothing")
    unsigned.send_task_heartbeat(taskToken=token)
    unsigned.send_task_success(taskToken=token, output='{"done": true}')
    keyed = signed(key="AKIDNOBODY", secret="nothing")
    keyed.meta.events.register("before-sign.sfn", lambda request, **_: request.headers.add_header(
        "x-api-key", "stage-key"))
    assert keyed.describe_execution(executionArn=started["executionArn"])["status"] == "SUCCEEDED"


# -- activities --------------------------------------------------------------------------------------

ACTIVITY_ROLE = f"arn:aws:iam::{ACCOUNT}:role/worker"


def activity_arn(name: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:activity:{name}"


@pytest.fixture
def polls(sfn, monkeypatch):
    """``sfn``, with GetActivityTask waiting 0.3 s for a task."""
    monkeypatch.setenv("ACTIVITY_POLL_SECONDS", "0.3")
    return sfn


def activity_machine(sfn, name: str, **task) -> str:
    definition = {"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": activity_arn("add"), "TimeoutSeconds": 300, "HeartbeatSeconds": 60,
                 **task, "Next": "Done"},
        "Done": {"Type": "Pass", "End": True}}}
    if "Catch" in task:
        definition["States"]["Rejected"] = {"Type": "Pass", "Result": "rejected", "End": True}
    return sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ACTIVITY_ROLE)["stateMachineArn"]


def events_of(sfn, execution_arn: str) -> list[dict]:
    return sfn.get_execution_history(executionArn=execution_arn)["events"]


def test_create_activity_is_idempotent_by_name_and_describe_list_delete(sfn):
    created = sfn.create_activity(name="add")
    assert created["activityArn"] == activity_arn("add")
    again = sfn.create_activity(name="add", tags=[{"key": "team", "value": "b"}])
    assert (again["activityArn"], again["creationDate"]) == (created["activityArn"], created["creationDate"])
    described = sfn.describe_activity(activityArn=activity_arn("add"))
    assert (described["name"], described["creationDate"]) == ("add", created["creationDate"])
    assert described["encryptionConfiguration"] == {"type": "AWS_OWNED_KEY"}
    for name in ("b", "c", "d", "e"):
        sfn.create_activity(name=name)
    first = sfn.list_activities(maxResults=2)
    assert [a["name"] for a in first["activities"]] == ["add", "b"]
    rest = sfn.list_activities(maxResults=10, nextToken=first["nextToken"])
    assert [a["name"] for a in rest["activities"]] == ["c", "d", "e"] and "nextToken" not in rest
    assert rest["activities"][0]["activityArn"] == activity_arn("c")
    sfn.delete_activity(activityArn=activity_arn("c"))
    sfn.delete_activity(activityArn=activity_arn("c"))  # not there: nothing changes, as in AWS
    assert code_of(sfn.describe_activity, activityArn=activity_arn("c")) == "ActivityDoesNotExist"
    assert [a["name"] for a in sfn.list_activities()["activities"]] == ["add", "b", "d", "e"]


def test_another_encryption_for_a_name_is_activity_already_exists(sfn):
    sfn.create_activity(name="add")
    kms = {"type": "CUSTOMER_MANAGED_KMS_KEY", "kmsKeyId": "alias/key"}
    assert code_of(sfn.create_activity, name="add", encryptionConfiguration=kms) == "ActivityAlreadyExists"
    sfn.create_activity(name="kms", encryptionConfiguration=kms)
    assert sfn.create_activity(name="kms", encryptionConfiguration=kms)["activityArn"] == activity_arn("kms")
    assert sfn.describe_activity(activityArn=activity_arn("kms"))["encryptionConfiguration"] == kms


@pytest.mark.parametrize("operation,fields,code", [
    ("create_activity", {"name": "has space"}, "InvalidName"),
    ("create_activity", {"name": "a/b"}, "InvalidName"),
    ("create_activity", {"name": "x", "tags": [{"key": f"k{i}", "value": ""} for i in range(51)]}, "TooManyTags"),
    ("describe_activity", {"activityArn": "add"}, "InvalidArn"),
    ("describe_activity", {"activityArn": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:add"}, "InvalidArn"),
    ("describe_activity", {"activityArn": "arn:aws:states:eu-west-1:111111111111:activity:add"},
     "ActivityDoesNotExist"),
    ("describe_activity", {"activityArn": activity_arn("nope")}, "ActivityDoesNotExist"),
    ("delete_activity", {"activityArn": f"arn:aws:states:{REGION}:{ACCOUNT}:activity:"}, "InvalidArn"),
    ("get_activity_task", {"activityArn": activity_arn("nope"), "workerName": "w"}, "ActivityDoesNotExist"),
    ("get_activity_task", {"activityArn": "nope"}, "InvalidArn"),
    ("list_activities", {"nextToken": "not-ours"}, "InvalidToken"),
])
def test_activity_errors(polls, operation, fields, code):
    polls.create_activity(name="add")
    assert code_of(getattr(polls, operation), **fields) == code


@pytest.mark.parametrize("operation,fields", [
    ("CreateActivity", {}),
    ("CreateActivity", {"name": ""}),
    ("GetActivityTask", {"activityArn": activity_arn("add"), "workerName": ""}),
    ("GetActivityTask", {"activityArn": 7}),
    ("ListActivities", {"maxResults": 1001}),
])
def test_activity_requests_are_checked_against_the_model(unchecked, operation, fields):
    name = "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")
    assert code_of(getattr(unchecked, name), **fields) == "ValidationException"


def test_an_encryption_type_aws_does_not_have_is_invalid_encryption_configuration(unchecked):
    assert code_of(unchecked.create_activity, name="add", encryptionConfiguration={"type": "ROT13"}) \
        == "InvalidEncryptionConfiguration"


def test_a_worker_polls_answers_and_the_history_reads_as_aws(polls, client):
    sfn = polls
    sfn.create_activity(name="add")
    arn = activity_machine(sfn, "adder", Parameters={"x.$": "$.x", "y.$": "$.y"}, ResultPath="$.sum")
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"x": 2, "y": 3}))["executionArn"]
    taken = sfn.get_activity_task(activityArn=activity_arn("add"), workerName="worker-1")
    assert json.loads(taken["input"]) == {"x": 2, "y": 3}
    assert "taskToken" not in sfn.get_activity_task(activityArn=activity_arn("add"), workerName="worker-2")
    sfn.send_task_heartbeat(taskToken=taken["taskToken"])
    sfn.send_task_success(taskToken=taken["taskToken"], output="5")
    done = sfn.describe_execution(executionArn=execution)
    assert (done["status"], json.loads(done["output"])) == ("SUCCEEDED", {"x": 2, "y": 3, "sum": 5})
    assert code_of(sfn.send_task_success, taskToken=taken["taskToken"], output="6") == "TaskTimedOut"
    events = events_of(sfn, execution)
    assert [e["type"] for e in events] == [
        "ExecutionStarted", "TaskStateEntered", "ActivityScheduled", "ActivityStarted", "ActivitySucceeded",
        "TaskStateExited", "PassStateEntered", "PassStateExited", "ExecutionSucceeded"]
    scheduled = events[2]["activityScheduledEventDetails"]
    assert scheduled["resource"] == activity_arn("add") and json.loads(scheduled["input"]) == {"x": 2, "y": 3}
    assert (scheduled["timeoutInSeconds"], scheduled["heartbeatInSeconds"]) == (300, 60)
    assert events[3]["activityStartedEventDetails"] == {"workerName": "worker-1"}
    assert json.loads(events[4]["activitySucceededEventDetails"]["output"]) == 5  # what the worker sent
    name = execution.rsplit(":", 1)[1]
    rest = json.loads(client.http.get(f"/executions/{name}").body)["history"]
    [started] = [e for e in rest if e["type"] == "ActivityStarted"]
    assert (started["state"], started["workerName"]) == ("Work", "worker-1")


def test_a_map_of_activity_tasks_worked_through_the_api_reads_as_when_stored_whole(polls, client, redis_client,
                                                                                   monkeypatch):
    """Its iterations stored apart, GetActivityTask, GET /continuations/{id}, SendTaskHeartbeat and the REST
    heartbeat each read and write one iteration; what they answer and the history are those of the Map
    stored whole."""
    sfn = polls
    sfn.create_activity(name="add")
    definition = {"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items", "End": True, "ItemProcessor": {"StartAt": "Work", "States": {
            "Work": {"Type": "Task", "Resource": activity_arn("add"), "HeartbeatSeconds": 60, "End": True}}}}}}
    arn = sfn.create_state_machine(name="each", definition=json.dumps(definition),
                                   roleArn=ACTIVITY_ROLE)["stateMachineArn"]

    def timeless(value):
        text = re.sub(r'"(timestamp|heartbeatAt|expiresAt|startDate|stopDate)": "[^"]*"', r'"\1": "T"',
                      json.dumps(value, default=str))
        return json.loads(re.sub(r"[A-Za-z0-9_-]{22,}", "ID", text))  # the IDs differ from run to run

    def work(name):
        execution = sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps({"items": [1, 2, 3]}))
        execution_id = rest_document(client, name)["executionId"]
        stored_apart = bool(redis_client.exists(f"asl:{{{execution_id[:4]}}}:f:{execution_id}"))
        tasks = [sfn.get_activity_task(activityArn=activity_arn("add"), workerName=f"w{n}") for n in range(3)]
        asked = [json.loads(client.http.get(f"/continuations/{task['taskToken']}").body) for task in tasks]
        sfn.send_task_heartbeat(taskToken=tasks[0]["taskToken"])
        beat = json.loads(client.http.post(f"/continuations/{tasks[1]['taskToken']}/heartbeat", body="{}",
                                           headers={"Content-Type": "application/json"}).body)
        sfn.send_task_heartbeat(taskToken=tasks[0]["taskToken"])
        for task in tasks:
            sfn.send_task_success(taskToken=task["taskToken"], output=task["input"])
        history = rest_document(client, name)["history"]
        events = events_of(sfn, execution["executionArn"])
        output = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["output"])
        return stored_apart, timeless([asked, beat, history, events]).__str__().replace(name, "N"), output

    apart = work("apart")
    monkeypatch.setattr(fanout, "SPLIT_FROM", 10 ** 9)
    whole = work("whole")
    assert (apart[0], whole[0]) == (True, False)
    assert apart[1:] == whole[1:] and apart[2] == [1, 2, 3]
    history = json.loads(client.http.get("/executions/apart").body)["history"]
    assert sorted(e["heartbeats"] for e in history if e["type"] == "TaskHeartbeat") == [1, 2]


def test_a_failure_sent_by_the_worker_is_caught_and_shown_as_activity_failed(sfn):
    sfn.create_activity(name="add")
    arn = activity_machine(sfn, "catching", Catch=[{"ErrorEquals": ["Rejected"], "Next": "Rejected"}])
    execution = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    taken = sfn.get_activity_task(activityArn=activity_arn("add"))
    sfn.send_task_failure(taskToken=taken["taskToken"], error="Rejected", cause="no")
    done = sfn.describe_execution(executionArn=execution)
    assert (done["status"], json.loads(done["output"])) == ("SUCCEEDED", "rejected")
    events = events_of(sfn, execution)
    [failed] = [e for e in events if e["type"] == "ActivityFailed"]
    assert failed["activityFailedEventDetails"] == {"error": "Rejected", "cause": "no"}
    [started] = [e for e in events if e["type"] == "ActivityStarted"]
    assert started["activityStartedEventDetails"] == {}  # no workerName given


def test_a_deleted_activity_fails_its_task_to_be_scheduled(sfn):
    sfn.create_activity(name="add")
    arn = activity_machine(sfn, "orphan")
    sfn.delete_activity(activityArn=activity_arn("add"))
    execution = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    done = sfn.describe_execution(executionArn=execution)
    assert (done["status"], done["error"]) == ("FAILED", "States.Runtime")
    [failed] = [e for e in events_of(sfn, execution) if e["type"] == "ActivityScheduleFailed"]
    assert failed["activityScheduleFailedEventDetails"]["cause"] == (
        "An error occurred while executing the state 'Work' (entered at the event id #2). "
        f"The activity {activity_arn('add')} does not exist.")


# -- state machines ------------------------------------------------------------------------------------

APPROVE = {"StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": "module:suspend", "End": True}}}
ROLE = f"arn:aws:iam::{ACCOUNT}:role/deployer"


def test_shipped_state_machines_appear_as_registered(sfn, machines):
    listed = sfn.list_state_machines()["stateMachines"]
    names = [m["name"] for m in listed]
    assert names == sorted(p.stem for p in machines.glob("*.json"))
    described = sfn.describe_state_machine(stateMachineArn=machine_arn("incsquare"))
    assert json.loads(described["definition"]) == json.loads((machines / "incsquare.json").read_text())
    assert described["status"] == "ACTIVE" and described["type"] == "STANDARD"
    assert code_of(sfn.update_state_machine, stateMachineArn=machine_arn("incsquare"),
                   definition=json.dumps(APPROVE)) == "ValidationException"
    assert code_of(sfn.delete_state_machine, stateMachineArn=machine_arn("incsquare")) == "ValidationException"


def test_create_start_update_and_delete_a_state_machine(sfn, client):
    created = sfn.create_state_machine(name="approve", definition=json.dumps(APPROVE), roleArn=ROLE)
    assert created["stateMachineArn"] == machine_arn("approve")
    again = sfn.create_state_machine(name="approve", definition=json.dumps(APPROVE), roleArn=ROLE)
    assert again["creationDate"] == created["creationDate"]  # the same definition: idempotent
    other = {**APPROVE, "Comment": "changed"}
    assert code_of(sfn.create_state_machine, name="approve", definition=json.dumps(other), roleArn=ROLE) \
        == "StateMachineAlreadyExists"
    first = sfn.describe_state_machine(stateMachineArn=created["stateMachineArn"])
    assert (first["roleArn"], json.loads(first["definition"])) == (ROLE, APPROVE)

    running = sfn.start_execution(stateMachineArn=created["stateMachineArn"], name="before-update",
                                  input='{"n": 1}')
    updated = sfn.update_state_machine(stateMachineArn=created["stateMachineArn"], definition=json.dumps({
        "StartAt": "Done", "States": {"Done": {"Type": "Pass", "Result": "new", "ResultPath": "$.v", "End": True}}}))
    assert updated["revisionId"] != first["revisionId"]
    assert sfn.describe_state_machine(stateMachineArn=created["stateMachineArn"])["revisionId"] == updated["revisionId"]
    # the running execution keeps the definition it started with
    kept = sfn.describe_state_machine_for_execution(executionArn=running["executionArn"])
    assert (json.loads(kept["definition"]), kept["revisionId"]) == (APPROVE, first["revisionId"])
    sfn.send_task_success(taskToken=token_of(client, "before-update"), output='{"ok": true}')
    assert json.loads(sfn.describe_execution(executionArn=running["executionArn"])["output"]) == {"n": 1, "ok": True}
    after = sfn.start_execution(stateMachineArn=created["stateMachineArn"], input='{"n": 2}')
    assert json.loads(sfn.describe_execution(executionArn=after["executionArn"])["output"]) == {"n": 2, "v": "new"}
    assert sfn.describe_state_machine_for_execution(executionArn=after["executionArn"])["revisionId"] \
        == updated["revisionId"]

    sfn.delete_state_machine(stateMachineArn=created["stateMachineArn"])
    assert code_of(sfn.describe_state_machine, stateMachineArn=created["stateMachineArn"]) == "StateMachineDoesNotExist"
    assert code_of(sfn.start_execution, stateMachineArn=created["stateMachineArn"]) == "StateMachineDoesNotExist"
    assert "approve" not in [m["name"] for m in sfn.list_state_machines()["stateMachines"]]
    # what ran before the delete is still described with its definition
    assert json.loads(sfn.describe_state_machine_for_execution(
        executionArn=running["executionArn"])["definition"]) == APPROVE


@pytest.mark.parametrize("definition,code", [
    ('{"StartAt": "Nowhere", "States": {}}', "InvalidDefinition"),
    ("{not json", "InvalidDefinition"),
    (json.dumps({"StartAt": "L", "States": {"L": {"Type": "Task", "End": True,
                                                 "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f"}}}),
     "InvalidDefinition"),  # a resource the stage does not allow
])
def test_create_refuses_an_invalid_definition(sfn, definition, code):
    assert code_of(sfn.create_state_machine, name="bad", definition=definition, roleArn=ROLE) == code


def test_create_refuses_a_bad_name_and_a_shipped_name_with_another_definition(sfn, machines):
    assert code_of(sfn.create_state_machine, name="a b", definition=json.dumps(APPROVE), roleArn=ROLE) \
        == "InvalidName"
    assert code_of(sfn.create_state_machine, name="incsquare", definition=json.dumps(APPROVE), roleArn=ROLE) \
        == "StateMachineAlreadyExists"
    shipped = sfn.create_state_machine(name="incsquare", definition=(machines / "incsquare.json").read_text(),
                                       roleArn=ROLE)
    assert shipped["stateMachineArn"] == machine_arn("incsquare")


def test_listing_state_machines_in_pages(sfn, machines):
    for index in range(5):
        sfn.create_state_machine(name=f"m{index}", definition=json.dumps(APPROVE), roleArn=ROLE)
    expected = sorted([p.stem for p in machines.glob("*.json")] + [f"m{i}" for i in range(5)])
    seen, token = [], None
    while True:
        page = sfn.list_state_machines(maxResults=3, **({"nextToken": token} if token else {}))
        assert len(page["stateMachines"]) <= 3
        seen += [m["name"] for m in page["stateMachines"]]
        token = page.get("nextToken")
        if token is None:
            break
    assert seen == expected
    assert [m["name"] for m in sfn.get_paginator("list_state_machines").paginate(
        PaginationConfig={"PageSize": 4}).build_full_result()["stateMachines"]] == expected
    assert code_of(sfn.list_state_machines, nextToken="%%%") == "InvalidToken"


def test_a_next_token_is_good_only_for_the_listing_that_gave_it(sfn, client):
    started = sfn.start_execution(stateMachineArn=machine_arn("worker"), name="tokens")
    sfn.start_execution(stateMachineArn=machine_arn("worker"), name="tokens-2")
    sfn.send_task_success(taskToken=token_of(client, "tokens"), output="{}")
    tokens = {
        "machines": sfn.list_state_machines(maxResults=1)["nextToken"],
        "history": sfn.get_execution_history(executionArn=started["executionArn"], maxResults=1)["nextToken"],
        "executions": sfn.list_executions(stateMachineArn=machine_arn("worker"), maxResults=1)["nextToken"],
    }
    calls = {
        "machines": lambda token: sfn.list_state_machines(nextToken=token),
        "history": lambda token: sfn.get_execution_history(executionArn=started["executionArn"], nextToken=token),
        "executions": lambda token: sfn.list_executions(stateMachineArn=machine_arn("worker"), nextToken=token),
    }
    for listing, call in calls.items():
        assert call(tokens[listing])["ResponseMetadata"]["HTTPStatusCode"] == 200
        for other in set(tokens) - {listing}:
            assert code_of(call, tokens[other]) == "InvalidToken", (listing, other)


def test_errors_of_the_state_machine_operations(sfn):
    missing = machine_arn("missing")
    assert code_of(sfn.describe_state_machine, stateMachineArn=missing) == "StateMachineDoesNotExist"
    assert code_of(sfn.update_state_machine, stateMachineArn=missing, roleArn=ROLE) == "StateMachineDoesNotExist"
    assert code_of(sfn.describe_state_machine, stateMachineArn="arn:nope") == "InvalidArn"
    sfn.delete_state_machine(stateMachineArn=missing)  # deleting what is not there changes nothing
    sfn.create_state_machine(name="approve", definition=json.dumps(APPROVE), roleArn=ROLE)
    assert code_of(sfn.update_state_machine, stateMachineArn=machine_arn("approve")) == "MissingRequiredParameter"
    assert code_of(sfn.update_state_machine, stateMachineArn=machine_arn("approve"), definition="{}") \
        == "InvalidDefinition"
    assert code_of(sfn.describe_state_machine_for_execution,
                   executionArn=f"arn:aws:states:{REGION}:{ACCOUNT}:execution:approve:none") == "ExecutionDoesNotExist"


def test_validate_state_machine_definition(sfn, unchecked):
    assert code_of(unchecked.validate_state_machine_definition) == "ValidationException"
    assert code_of(unchecked.validate_state_machine_definition, definition="{}", maxResults="ten") \
        == "ValidationException"
    assert sfn.validate_state_machine_definition(definition=json.dumps(APPROVE))["result"] == "OK"
    failed = sfn.validate_state_machine_definition(definition='{"StartAt": "X", "States": {}}')
    assert failed["result"] == "FAIL" and failed["diagnostics"]
    assert all(d["severity"] == "ERROR" and d["message"] for d in failed["diagnostics"])
    broken = sfn.validate_state_machine_definition(definition="{nope")
    assert [d["code"] for d in broken["diagnostics"]] == ["INVALID_JSON_DESCRIPTION"]
    many = {"StartAt": "A", "States": {f"S{i}": {"Type": "Pass", "Next": "Gone"} for i in range(5)}}
    truncated = sfn.validate_state_machine_definition(definition=json.dumps(many), maxResults=2)
    assert len(truncated["diagnostics"]) == 2 and truncated["truncated"] is True


def test_tags(sfn):
    sfn.create_state_machine(name="tagged", definition=json.dumps(APPROVE), roleArn=ROLE,
                             tags=[{"key": "team", "value": "ops"}])
    arn = machine_arn("tagged")
    assert sfn.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "team", "value": "ops"}]
    sfn.tag_resource(resourceArn=arn, tags=[{"key": "env", "value": "dev"}, {"key": "team", "value": "core"}])
    assert sfn.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "env", "value": "dev"},
                                                                  {"key": "team", "value": "core"}]
    sfn.untag_resource(resourceArn=arn, tagKeys=["team", "absent"])
    assert sfn.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "env", "value": "dev"}]
    sfn.tag_resource(resourceArn=machine_arn("incsquare"), tags=[{"key": "shipped", "value": "yes"}])
    assert sfn.list_tags_for_resource(resourceArn=machine_arn("incsquare"))["tags"] == [
        {"key": "shipped", "value": "yes"}]
    assert code_of(sfn.list_tags_for_resource, resourceArn=machine_arn("missing")) == "ResourceNotFound"
    assert code_of(sfn.tag_resource, resourceArn=machine_arn("missing"), tags=[]) == "ResourceNotFound"
    assert code_of(sfn.untag_resource, resourceArn=machine_arn("missing"), tagKeys=["team"]) == "ResourceNotFound"
    assert code_of(sfn.create_state_machine, name="overtagged", definition=json.dumps(APPROVE), roleArn=ROLE,
                   tags=[{"key": f"k{i}", "value": "v"} for i in range(51)]) == "TooManyTags"
    assert code_of(sfn.describe_state_machine, stateMachineArn=machine_arn("overtagged")) \
        == "StateMachineDoesNotExist"
    assert code_of(sfn.tag_resource, resourceArn=arn,
                   tags=[{"key": f"k{i}", "value": "v"} for i in range(50)]) == "TooManyTags"
    sfn.delete_state_machine(stateMachineArn=arn)
    sfn.create_state_machine(name="tagged", definition=json.dumps(APPROVE), roleArn=ROLE)
    assert sfn.list_tags_for_resource(resourceArn=arn)["tags"] == []


# -- history, listing, synchronous starts ---------------------------------------------------------------

def test_get_execution_history_names_the_events_as_aws(sfn, client):
    started = sfn.start_execution(stateMachineArn=machine_arn("worker"), name="told", input='{"job": 3}')
    sfn.send_task_success(taskToken=token_of(client, "told"), output='{"done": 1}')
    events = sfn.get_execution_history(executionArn=started["executionArn"])["events"]
    assert [e["type"] for e in events] == ["ExecutionStarted", "TaskStateEntered", "TaskScheduled", "TaskStarted",
                                           "TaskSubmitted", "TaskSucceeded", "TaskStateExited", "ExecutionSucceeded"]
    assert [(e["id"], e["previousEventId"]) for e in events] == [(i, i - 1) for i in range(1, 9)]
    assert json.loads(events[0]["executionStartedEventDetails"]["input"]) == {"job": 3}
    assert events[1]["stateEnteredEventDetails"]["name"] == "Work"
    scheduled = events[2]["taskScheduledEventDetails"]
    assert (scheduled["resourceType"], scheduled["resource"]) == ("module", "increment.waitForTaskToken")
    assert json.loads(scheduled["parameters"])["token"] == rest_document(client, "told")["history"][2][
        "parameters"]["token"]
    assert json.loads(events[5]["taskSucceededEventDetails"]["output"]) == {"done": 1}  # what SendTaskSuccess sent
    assert json.loads(events[-1]["executionSucceededEventDetails"]["output"]) == {"done": 1}
    # the same events as the REST history: each at the instant of one of its events, in the same order
    rest = rest_document(client, "told")["history"]
    assert epoch(events[0]["timestamp"]) == pytest.approx(epoch_of_iso(rest[0]["timestamp"]), abs=0.001)
    assert epoch(events[-1]["timestamp"]) == pytest.approx(epoch_of_iso(rest[-1]["timestamp"]), abs=0.001)
    at = 0
    for event in events:
        while at < len(rest) and abs(epoch_of_iso(rest[at]["timestamp"]) - epoch(event["timestamp"])) > 0.001:
            at += 1
        assert at < len(rest), (event, rest)


def test_history_in_reverse_in_pages_and_without_data(sfn, client):
    started = sfn.start_execution(stateMachineArn=machine_arn("worker"), name="paged")
    sfn.send_task_failure(taskToken=token_of(client, "paged"), error="Rejected", cause="no")
    everything = sfn.get_execution_history(executionArn=started["executionArn"])["events"]
    backwards = sfn.get_execution_history(executionArn=started["executionArn"], reverseOrder=True)["events"]
    assert backwards == list(reversed(everything))
    assert "TaskFailed" in [e["type"] for e in everything]
    failed = next(e for e in everything if e["type"] == "TaskFailed")["taskFailedEventDetails"]
    assert (failed["error"], failed["cause"]) == ("Rejected", "no")
    pages = list(sfn.get_paginator("get_execution_history").paginate(
        executionArn=started["executionArn"], PaginationConfig={"PageSize": 2}))
    assert len(pages) == (len(everything) + 1) // 2
    assert [e for page in pages for e in page["events"]] == everything
    backwards_in_pages = sfn.get_paginator("get_execution_history").paginate(
        executionArn=started["executionArn"], reverseOrder=True, PaginationConfig={"PageSize": 3})
    assert [e for page in backwards_in_pages for e in page["events"]] == backwards
    bare = sfn.get_execution_history(executionArn=started["executionArn"], includeExecutionData=False)["events"]
    assert "input" not in bare[0]["executionStartedEventDetails"]
    assert "input" in everything[0]["executionStartedEventDetails"]
    assert code_of(sfn.get_execution_history, executionArn=started["executionArn"], nextToken="!!") == "InvalidToken"
    assert code_of(sfn.get_execution_history,
                   executionArn=started["executionArn"].replace("paged", "none")) == "ExecutionDoesNotExist"


def test_history_of_parallel_map_choice_and_abort(sfn, client, machines):
    flow = {"StartAt": "Fan", "States": {
        "Fan": {"Type": "Parallel", "Next": "Each", "Branches": [
            {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}]},
        "Each": {"Type": "Map", "ItemsPath": "$[0].items", "Next": "Pick", "ItemProcessor": {
            "StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}}},
        "Pick": {"Type": "Choice", "Default": "Hold", "Choices": [
            {"Variable": "$[0]", "NumericEquals": 99, "Next": "Hold"}]},
        "Hold": {"Type": "Task", "Resource": "module:suspend", "End": True}}}
    (machines / "flow.json").write_text(json.dumps(flow))
    started = sfn.start_execution(stateMachineArn=machine_arn("flow"), input='{"items": [1, 2]}')
    sfn.stop_execution(executionArn=started["executionArn"], error="Enough", cause="stop")
    kinds = [e["type"] for e in sfn.get_execution_history(executionArn=started["executionArn"])["events"]]
    for kind in ("ParallelStateEntered", "ParallelStateStarted", "PassStateEntered", "ParallelStateSucceeded",
                 "ParallelStateExited", "MapStateEntered", "MapStateStarted", "MapStateSucceeded",
                 "MapStateExited", "ChoiceStateEntered", "ChoiceStateExited", "TaskStateEntered", "TaskStarted",
                 "ExecutionAborted"):
        assert kind in kinds, kind
    events = sfn.get_execution_history(executionArn=started["executionArn"])["events"]
    started_map = next(e for e in events if e["type"] == "MapStateStarted")
    assert started_map["mapStateStartedEventDetails"]["length"] == 2
    assert events[-1]["executionAbortedEventDetails"] == {"error": "Enough", "cause": "stop"}


def test_list_executions_by_machine_and_status_in_pages(sfn, client):
    done = sfn.start_execution(stateMachineArn=machine_arn("incsquare"), name="l-done", input='{"value": 1}')
    sfn.send_task_success(taskToken=token_of(client, "l-done"), output="{}")
    waiting = [sfn.start_execution(stateMachineArn=machine_arn("incsquare"), name=f"l-wait{i}",
                                   input='{"value": 1}')["executionArn"] for i in range(3)]
    other = sfn.start_execution(stateMachineArn=machine_arn("worker"), name="l-other")["executionArn"]
    running = sfn.list_executions(stateMachineArn=machine_arn("incsquare"), statusFilter="RUNNING")["executions"]
    assert sorted(e["executionArn"] for e in running) == sorted(waiting)
    assert all(e["status"] == "RUNNING" and e["stateMachineArn"] == machine_arn("incsquare") for e in running)
    succeeded = sfn.list_executions(stateMachineArn=machine_arn("incsquare"), statusFilter="SUCCEEDED")
    assert [e["executionArn"] for e in succeeded["executions"]] == [done["executionArn"]]
    assert "stopDate" in succeeded["executions"][0]
    everything = sfn.get_paginator("list_executions").paginate(
        stateMachineArn=machine_arn("incsquare"), PaginationConfig={"PageSize": 2}).build_full_result()
    assert sorted(e["executionArn"] for e in everything["executions"]) == sorted(waiting + [done["executionArn"]])
    paged = sfn.get_paginator("list_executions").paginate(
        stateMachineArn=machine_arn("worker"), statusFilter="RUNNING",
        PaginationConfig={"PageSize": 1}).build_full_result()["executions"]
    assert [e["executionArn"] for e in paged] == [other]
    assert code_of(sfn.list_executions, stateMachineArn=machine_arn("missing")) == "StateMachineDoesNotExist"
    assert code_of(sfn.list_executions, stateMachineArn=machine_arn("incsquare"), nextToken="bad") == "InvalidToken"


def test_describe_map_run_and_list_map_runs(sfn, machines, client):
    """A Distributed Map's run through boto3: its children run on the app's worker threads."""
    import time

    (machines / "fanout.json").write_text(json.dumps({"StartAt": "Map", "States": {"Map": {
        "Type": "Map", "Label": "Each", "End": True, "ToleratedFailurePercentage": 10,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                          "StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}}}}))
    arn = sfn.start_execution(stateMachineArn=machine_arn("fanout"), name="fan-1", input="[1, 2, 3]")["executionArn"]
    deadline = time.monotonic() + 60
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert json.loads(described["output"]) == [1, 2, 3]
    [listed] = sfn.list_map_runs(executionArn=arn)["mapRuns"]
    assert listed["executionArn"] == arn
    assert listed["mapRunArn"].startswith(f"arn:aws:states:{REGION}:{ACCOUNT}:mapRun:fanout/Each:")
    run = sfn.describe_map_run(mapRunArn=listed["mapRunArn"])
    assert (run["status"], run["executionArn"], run["toleratedFailurePercentage"]) == ("SUCCEEDED", arn, 10.0)
    assert run["executionCounts"]["succeeded"] == run["itemCounts"]["total"] == 3
    assert run["maxConcurrency"] == 1000 and run["stopDate"] >= run["startDate"]
    history = [event["type"] for event in sfn.get_execution_history(executionArn=arn)["events"]]
    assert history[history.index("MapStateStarted"):] == [
        "MapStateStarted", "MapRunStarted", "MapRunSucceeded", "MapStateSucceeded", "MapStateExited",
        "ExecutionSucceeded"]
    started = [event for event in sfn.get_execution_history(executionArn=arn)["events"]
               if event["type"] == "MapRunStarted"]
    assert started[0]["mapRunStartedEventDetails"] == {"mapRunArn": listed["mapRunArn"]}
    assert code_of(sfn.describe_map_run, mapRunArn="not-an-arn") == "InvalidArn"
    assert code_of(sfn.describe_map_run, mapRunArn=listed["mapRunArn"] + "x") == "ResourceNotFound"
    assert code_of(sfn.list_map_runs, executionArn=arn + "-missing") == "ExecutionDoesNotExist"
    assert code_of(sfn.list_map_runs, executionArn="arn:aws:states:x") == "InvalidArn"
    assert code_of(sfn.list_map_runs, executionArn=arn, nextToken="bad") == "InvalidToken"


def test_list_executions_reads_the_machine_index_whatever_else_is_stored(sfn):
    """A page of one machine's executions costs the same Redis commands with 1 or 41 executions of another
    machine stored, and none of them is SCAN or KEYS: it reads the per-machine index, not every execution."""
    from bench.service import Recorder, instrument
    from chalicelib.config import settings
    from chalicelib.store.connection import get_redis

    for i in range(3):
        sfn.start_execution(stateMachineArn=machine_arn("incsquare"), name=f"indexed-{i}", input='{"value": 1}')
    sfn.start_execution(stateMachineArn=machine_arn("worker"), name="other-0")
    redis = get_redis(settings())
    pool, recorder = redis.connection_pool, Recorder()
    connection_class = pool.connection_class

    def page() -> tuple[list[str], list]:
        trips = recorder.record()
        listed = sfn.list_executions(stateMachineArn=machine_arn("incsquare"), statusFilter="RUNNING", maxResults=2)
        recorder.stop()
        return [e["name"] for e in listed["executions"]], trips

    instrument(redis, recorder)
    try:
        page()  # connects
        names, few = page()
        for i in range(1, 41):
            sfn.start_execution(stateMachineArn=machine_arn("worker"), name=f"other-{i}")
        again, many = page()
    finally:
        pool.connection_class = connection_class
        pool.reset()
    assert names == again == ["indexed-2", "indexed-1"]
    assert few == many and few, (few, many)
    assert not {"SCAN", "KEYS", "SSCAN", "HSCAN", "ZSCAN"} & {command for trip in many for command in trip}


def test_start_sync_execution(sync, machines, client):
    sfn = sync
    (machines / "quick.json").write_text(json.dumps({"StartAt": "Add", "States": {
        "Add": {"Type": "Task", "Resource": "module:increment", "End": True}}}))
    done = sfn.start_sync_execution(stateMachineArn=machine_arn("quick"), input='{"value": 41}')
    assert (done["status"], json.loads(done["output"])) == ("SUCCEEDED", {"value": 42})
    assert done["stopDate"] >= done["startDate"]
    (machines / "broken.json").write_text(json.dumps({"StartAt": "F", "States": {
        "F": {"Type": "Fail", "Error": "Broken", "Cause": "on purpose"}}}))
    failed = sfn.start_sync_execution(stateMachineArn=machine_arn("broken"))
    assert (failed["status"], failed["error"], failed["cause"]) == ("FAILED", "Broken", "on purpose")
    # a suspending execution cannot answer within the request: it ends TIMED_OUT
    waited = sfn.start_sync_execution(stateMachineArn=machine_arn("incsquare"), name="sync-wait",
                                      input='{"value": 1}')
    assert (waited["status"], waited["error"]) == ("TIMED_OUT", "States.Timeout")
    assert rest_document(client, "sync-wait")["status"] == "TIMED_OUT"
    assert rest_document(client, "sync-wait")["continuations"] == []
    assert code_of(sfn.start_sync_execution, stateMachineArn=machine_arn("missing")) == "StateMachineDoesNotExist"
    assert code_of(sfn.start_sync_execution, stateMachineArn=machine_arn("quick"), name="no/slash") == "InvalidName"
    assert code_of(sfn.start_sync_execution, stateMachineArn=machine_arn("quick"), input="[1,") \
        == "InvalidExecutionInput"


CHAIN = {"StartAt": "S0", "States": {**{f"S{i}": {"Type": "Pass", "Next": f"S{i + 1}"} for i in range(11)},
                                     "S11": {"Type": "Pass", "End": True}}}


def test_a_synchronous_start_that_outlives_the_budget_or_waits_on_a_timer_is_timed_out(
        sync, machines, client, monkeypatch):
    """12 states with a budget of 5 transitions a request: TIMED_OUT after 6 states, and nothing runs on in
    the background (a REST start of the same machine, handed to the background, ends SUCCEEDED)."""
    from chalicelib.api import runtime

    (machines / "chain.json").write_text(json.dumps(CHAIN))
    (machines / "later.json").write_text(json.dumps({"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 3600, "End": True}}}))
    monkeypatch.setenv("REQUEST_MAX_TRANSITIONS", "5")
    handed: list[str] = []  # executions handed to the background
    monkeypatch.setattr(runtime, "dispatcher", lambda config: handed.append)
    out = sync.start_sync_execution(stateMachineArn=machine_arn("chain"), name="sync-long", input='{"n": 1}')
    assert (out["status"], out["error"]) == ("TIMED_OUT", "States.Timeout") and "output" not in out
    document = rest_document(client, "sync-long")
    assert document["status"] == "TIMED_OUT"
    # the first state, then 5 transitions
    assert [e["state"] for e in document["history"] if e["type"] == "StateEntered"] == [f"S{i}" for i in range(6)]
    assert handed == []
    waited = sync.start_sync_execution(stateMachineArn=machine_arn("later"), name="sync-later")
    assert (waited["status"], waited["error"]) == ("TIMED_OUT", "States.Timeout")
    assert rest_document(client, "sync-later")["status"] == "TIMED_OUT"
    assert handed == []
    # the same machine started over REST goes on in the background and ends
    response = client.http.post("/executions", headers={"Content-Type": "application/json"},
                                body=json.dumps({"stateMachine": "chain", "name": "rest-long", "input": {"n": 1}}))
    assert json.loads(response.body)["status"] == "RUNNING"
    [execution_id] = handed
    runtime.continue_in_background(execution_id)
    assert rest_document(client, "rest-long")["status"] == "SUCCEEDED"


def test_the_context_object_names_the_execution_by_the_arn_the_api_answers(client, machines, answers, monkeypatch):
    monkeypatch.setenv("STATES_REGION", "ap-south-1")
    monkeypatch.setenv("STATES_ACCOUNT_ID", "210987654321")
    sfn = through_test_client(client, answers=answers)
    sfn.create_state_machine(name="whoami", roleArn=ROLE, definition=json.dumps({"StartAt": "Me", "States": {
        "Me": {"Type": "Pass", "End": True, "Parameters": {"execution.$": "$$.Execution.Id",
                                                           "machine.$": "$$.StateMachine.Id"}}}}))
    arn = "arn:aws:states:ap-south-1:210987654321:stateMachine:whoami"
    started = sfn.start_execution(stateMachineArn=arn, name="me")
    output = json.loads(sfn.describe_execution(executionArn=started["executionArn"])["output"])
    assert output == {"execution": started["executionArn"], "machine": arn}


def test_rest_starts_a_registered_state_machine_by_name(sfn, client):
    sfn.create_state_machine(name="approve", definition=json.dumps(APPROVE), roleArn=ROLE)
    response = client.http.post("/executions", headers={"Content-Type": "application/json"},
                                body=json.dumps({"stateMachine": "approve", "input": {"a": 1}, "name": "via-rest"}))
    assert response.status_code == 200 and json.loads(response.body)["status"] == "SUSPENDED"
    arn = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:approve:via-rest"
    assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"


def test_a_child_execution_arn_is_one_the_api_describes(sfn, client, machines):
    (machines / "parent.json").write_text(json.dumps({"StartAt": "Child", "States": {"Child": {
        "Type": "Task", "Resource": "arn:aws:states:::states:startExecution", "End": True,
        "Parameters": {"StateMachineArn": machine_arn("incsquare"), "Input": {"value": 2}}}}}))
    started = sfn.start_execution(stateMachineArn=machine_arn("parent"), name="parent-of-one")
    output = json.loads(sfn.describe_execution(executionArn=started["executionArn"])["output"])
    child = sfn.describe_execution(executionArn=output["ExecutionArn"])
    assert (child["stateMachineArn"], json.loads(child["input"])) == (machine_arn("incsquare"), {"value": 2})


# -- TestState -------------------------------------------------------------------------------------

TESTED_TASK = {"Type": "Task", "Resource": "module:increment", "InputPath": "$.payload",
        "ResultSelector": {"next.$": "$.value"}, "ResultPath": "$.result", "Next": "Done",
        "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 3, "MaxAttempts": 1}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Recover"}]}


def test_a_task_calls_its_resource_and_shows_each_step(sfn):
    answer = sfn.test_state(definition=json.dumps(TESTED_TASK), roleArn="arn:aws:iam::000000000000:role/any",
                            input=json.dumps({"payload": {"value": 41}}), inspectionLevel="DEBUG")
    assert (answer["status"], answer["nextState"]) == ("SUCCEEDED", "Done")
    assert json.loads(answer["output"]) == {"payload": {"value": 41}, "result": {"next": 42}}
    data = {key: json.loads(value) for key, value in answer["inspectionData"].items()}
    assert data == {"input": {"payload": {"value": 41}}, "afterInputPath": {"value": 41},
                    "afterParameters": {"value": 41}, "result": {"value": 42}, "afterResultSelector": {"next": 42},
                    "afterResultPath": {"payload": {"value": 41}, "result": {"next": 42}}}


def test_mocked_results_and_errors(sfn):
    mocked = sfn.test_state(definition=json.dumps(TESTED_TASK), input='{"payload": {}}',
                            mock={"result": json.dumps({"value": 7})})
    assert json.loads(mocked["output"]) == {"payload": {}, "result": {"next": 7}}
    assert "inspectionData" not in mocked
    retriable = sfn.test_state(definition=json.dumps(TESTED_TASK), input='{"payload": {}}', inspectionLevel="DEBUG",
                               mock={"errorOutput": {"error": "Flaky", "cause": "later"}})
    assert (retriable["status"], retriable["error"], retriable["cause"]) == ("RETRIABLE", "Flaky", "later")
    assert retriable["inspectionData"]["errorDetails"] == {"retryIndex": 0, "retryBackoffIntervalSeconds": 3}
    caught = sfn.test_state(definition=json.dumps(TESTED_TASK), input='{"payload": {}}', inspectionLevel="DEBUG",
                            mock={"errorOutput": {"error": "Flaky", "cause": "later"}},
                            stateConfiguration={"retrierRetryCount": 1})
    assert (caught["status"], caught["nextState"]) == ("CAUGHT_ERROR", "Recover")
    assert json.loads(caught["output"])["failure"] == {"Error": "Flaky", "Cause": "later"}
    assert caught["inspectionData"]["errorDetails"] == {"catchIndex": 0}


def test_a_state_of_a_machine_with_variables(sfn):
    machine = {"StartAt": "Ask", "QueryLanguage": "JSONata", "States": {
        "Ask": {"Type": "Pass", "Output": "{% $states.input.n + $base %}", "Assign": {"seen": True},
                "Next": "Decide"},
        "Decide": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input > 10 %}", "Next": "Big"}],
                   "Default": "Small"},
        "Big": {"Type": "Succeed"}, "Small": {"Type": "Succeed"}}}
    passed = sfn.test_state(definition=json.dumps(machine), stateName="Ask", input='{"n": 5}',
                            variables='{"base": 10}', inspectionLevel="DEBUG")
    assert (json.loads(passed["output"]), passed["nextState"]) == (15, "Decide")
    assert json.loads(passed["inspectionData"]["variables"]) == {"base": 10, "seen": True}
    decided = sfn.test_state(definition=json.dumps(machine), stateName="Decide", input="15")
    assert (decided["status"], decided["nextState"]) == ("SUCCEEDED", "Big")


def test_a_failing_state_answers_failed_not_an_error(sfn):
    failed = sfn.test_state(definition=json.dumps({"Type": "Fail", "Error": "Nope", "Cause": "because"}))
    assert (failed["status"], failed["error"], failed["cause"]) == ("FAILED", "Nope", "because")
    assert "output" not in failed and "nextState" not in failed


def test_what_cannot_be_tested_is_refused_with_aws_codes(sfn):
    assert code_of(sfn.test_state, definition="{not json") == "InvalidDefinition"
    assert code_of(sfn.test_state, definition=json.dumps({"Type": "Pass", "ResultPath": 3, "End": True})) \
        == "InvalidDefinition"
    assert code_of(sfn.test_state, definition=json.dumps({"Type": "Pass", "End": True}), input="{x") \
        == "InvalidExecutionInput"
    assert code_of(sfn.test_state, definition=json.dumps({"Type": "Pass", "End": True}),
                   mock={"result": "1"}) == "ValidationException"
    waits = {"Type": "Task", "Resource": "module:suspend", "End": True}
    assert code_of(sfn.test_state, definition=json.dumps(waits)) == "ValidationException"
    assert code_of(sfn.test_state, definition=json.dumps({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Succeed"}}})) == "ValidationException"


def test_a_resource_the_stage_does_not_allow_is_refused_unless_mocked(sfn, monkeypatch):
    monkeypatch.setenv("ALLOWED_RESOURCES", "module:*")
    lambda_task = {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:000000000000:function:f", "End": True}
    assert code_of(sfn.test_state, definition=json.dumps(lambda_task)) == "InvalidDefinition"
    mocked = sfn.test_state(definition=json.dumps(lambda_task), mock={"result": '{"ok": 1}'})
    assert json.loads(mocked["output"]) == {"ok": 1}


# -- RedriveExecution ------------------------------------------------------------------------------

def test_redrive_a_map_where_3_of_100_iterations_failed(sfn, items):
    calls, broken = items
    arn = sfn.create_state_machine(name="hundred", definition=json.dumps(HUNDRED),
                                   roleArn=f"arn:aws:iam::{ACCOUNT}:role/hundred")["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, name="hundred-1",
                                    input=json.dumps({"items": list(range(100))}))["executionArn"]
    failed = sfn.describe_execution(executionArn=execution)
    assert (failed["status"], failed["error"]) == ("FAILED", "States.ExceedToleratedFailureThreshold")
    assert (failed["redriveCount"], failed["redriveStatus"]) == (0, "REDRIVABLE")
    assert "redriveDate" not in failed and "redriveStatusReason" not in failed
    broken.clear()
    redriven = sfn.redrive_execution(executionArn=execution)
    done = sfn.describe_execution(executionArn=execution)
    assert done["status"] == "SUCCEEDED" and done["executionArn"] == execution
    assert json.loads(done["output"]) == [{"done": item} for item in range(100)]
    assert (done["redriveCount"], done["redriveDate"]) == (1, redriven["redriveDate"])
    assert (done["redriveStatus"], done["redriveStatusReason"]) == (
        "NOT_REDRIVABLE", "Execution is SUCCEEDED and cannot be redriven")
    rerun_only_the_broken(calls)
    events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    types = [event["type"] for event in events]
    assert types.index("ExecutionFailed") < types.index("ExecutionRedriven") < types.index("ExecutionSucceeded")
    [event] = [event for event in events if event["type"] == "ExecutionRedriven"]
    assert event["executionRedrivenEventDetails"] == {"redriveCount": 1}
    assert code_of(sfn.redrive_execution, executionArn=execution) == "ExecutionNotRedrivable"


def test_redrive_an_aborted_execution_and_answer_its_new_token(sfn, client):
    execution = sfn.start_execution(stateMachineArn=machine_arn("worker"), name="stopped-worker")["executionArn"]
    first = token_of(client, "stopped-worker")
    sfn.stop_execution(executionArn=execution, error="Stop", cause="by hand")
    sfn.redrive_execution(executionArn=execution)
    waiting = sfn.describe_execution(executionArn=execution)
    assert (waiting["status"], waiting["redriveCount"], waiting["redriveStatus"]) == ("RUNNING", 1, "NOT_REDRIVABLE")
    assert waiting["redriveStatusReason"] == "Execution is RUNNING and cannot be redriven"
    assert "error" not in waiting and "stopDate" not in waiting
    second = token_of(client, "stopped-worker")
    assert second != first
    assert code_of(sfn.send_task_success, taskToken=first, output="{}") == "TaskTimedOut"
    sfn.send_task_success(taskToken=second, output=json.dumps({"value": 5}))
    assert sfn.describe_execution(executionArn=execution)["status"] == "SUCCEEDED"


def test_redrive_a_timed_out_execution(sfn, sync, client):
    timed = sync.start_sync_execution(stateMachineArn=machine_arn("incsquare"), name="sync-then-redrive",
                                      input=json.dumps({"value": 6}))
    assert timed["status"] == "TIMED_OUT"
    sfn.redrive_execution(executionArn=timed["executionArn"])
    assert sfn.describe_execution(executionArn=timed["executionArn"])["status"] == "RUNNING"
    sfn.send_task_success(taskToken=token_of(client, "sync-then-redrive"), output="{}")
    done = sfn.describe_execution(executionArn=timed["executionArn"])
    assert (done["status"], json.loads(done["output"])) == ("SUCCEEDED", {"value": 50})


def test_the_same_client_token_answers_the_same_redrive(sfn, items):
    calls, broken = items
    arn = sfn.create_state_machine(name="hundred-again", definition=json.dumps(HUNDRED),
                                   roleArn=f"arn:aws:iam::{ACCOUNT}:role/hundred")["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"items": list(range(100))}))["executionArn"]
    first = sfn.redrive_execution(executionArn=execution, clientToken="retry-after-a-lost-answer")
    again = sfn.redrive_execution(executionArn=execution, clientToken="retry-after-a-lost-answer")
    assert again["redriveDate"] == first["redriveDate"]
    described = sfn.describe_execution(executionArn=execution)
    assert (described["status"], described["redriveCount"]) == ("FAILED", 1)  # it failed again, once
    assert sum(calls.values()) == 103


def test_redrive_errors(sfn):
    assert code_of(sfn.redrive_execution, executionArn="not-an-arn") == "InvalidArn"
    assert code_of(sfn.redrive_execution,
                   executionArn=f"arn:aws:states:{REGION}:{ACCOUNT}:execution:incsquare:nobody") == "ExecutionDoesNotExist"
    running = sfn.start_execution(stateMachineArn=machine_arn("incsquare"), input='{"value": 1}')["executionArn"]
    assert code_of(sfn.redrive_execution, executionArn=running) == "ExecutionNotRedrivable"


def test_list_executions_of_a_map_run(sfn, machines):
    """ListExecutions with mapRunArn: the run's child executions (item 0 waits for a person), in pages,
    filtered by status, each with its run and item count; AWS's errors for a missing or a doubled ARN."""
    import time

    (machines / "children.json").write_text(json.dumps({"StartAt": "Map", "States": {"Map": {
        "Type": "Map", "End": True,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                          "StartAt": "Which", "States": {
                              "Which": {"Type": "Choice", "Default": "Done",
                                        "Choices": [{"Variable": "$.n", "NumericEquals": 0, "Next": "Ask"}]},
                              "Ask": {"Type": "Task", "Resource": "module:suspend", "End": True},
                              "Done": {"Type": "Pass", "End": True}}}}}}))
    arn = sfn.start_execution(stateMachineArn=machine_arn("children"), name="kids",
                              input=json.dumps([{"n": n} for n in range(5)]))["executionArn"]
    deadline = time.monotonic() + 60
    while not (runs := sfn.list_map_runs(executionArn=arn)["mapRuns"]) or \
            sfn.describe_map_run(mapRunArn=runs[0]["mapRunArn"])["executionCounts"]["succeeded"] < 4:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    run_arn = runs[0]["mapRunArn"]
    run_id = run_arn.rsplit(":", 1)[1]
    listed = sfn.list_executions(mapRunArn=run_arn)["executions"]
    assert sorted((e["name"], e["status"]) for e in listed) == [
        (f"{run_id}-{n}", "RUNNING" if n == 0 else "SUCCEEDED") for n in range(5)]
    assert {(e["mapRunArn"], e["itemCount"], e["stateMachineArn"]) for e in listed} == {
        (run_arn, 1, machine_arn("children/Map"))}
    assert all(e["executionArn"] == f"arn:aws:states:{REGION}:{ACCOUNT}:execution:children/Map:{e['name']}"
               for e in listed)
    assert [e["startDate"] for e in listed] == sorted(e["startDate"] for e in listed)  # oldest first
    paged = sfn.get_paginator("list_executions").paginate(
        mapRunArn=run_arn, PaginationConfig={"PageSize": 2}).build_full_result()["executions"]
    assert sorted(e["name"] for e in paged) == sorted(e["name"] for e in listed)
    first = sfn.list_executions(mapRunArn=run_arn, maxResults=2)
    assert len(first["executions"]) == 2 and first["nextToken"]
    [waiting] = sfn.get_paginator("list_executions").paginate(
        mapRunArn=run_arn, statusFilter="RUNNING", PaginationConfig={"PageSize": 2}).build_full_result()["executions"]
    assert waiting["name"] == f"{run_id}-0"
    assert len(sfn.list_executions(mapRunArn=run_arn, statusFilter="SUCCEEDED")["executions"]) == 4
    assert code_of(sfn.list_executions, mapRunArn=run_arn[:-1] + "x") == "ResourceNotFound"
    assert code_of(sfn.list_executions, mapRunArn="arn:aws:states:x") == "InvalidArn"
    assert code_of(sfn.list_executions, mapRunArn=run_arn, stateMachineArn=machine_arn("children")) == \
        "ValidationException"
    assert code_of(sfn.list_executions) == "ValidationException"
    assert code_of(sfn.list_executions, mapRunArn=run_arn, nextToken="bad") == "InvalidToken"
    sfn.stop_execution(executionArn=arn)
