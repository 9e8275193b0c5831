"""The Step Functions API over HTTP: boto3 with ``endpoint_url`` and the AWS CLI against ``chalice local``
(started with ``make run``'s command), on a stage with AWS credentials configured, so every request
carries a real SigV4 signature over the wire, and README's commands and boto3 example against ``make
run``'s own dev stage. What boto3 and the CLI are answered is held to ``aws_clients``' check."""
from __future__ import annotations

import base64
import json
import os
import shlex
import subprocess
import sys
import tempfile

import pytest
import redis
from botocore.exceptions import ClientError

from ..conftest import REDIS_URL, ROOT
from ..local_server import call, chalice_local
from .aws_clients import MODEL, Answer, assert_answers_fit, machine_arn, over_http

KEYS = {"AKIDLOCAL": "local-secret"}
README_URL = "http://127.0.0.1:8000"  # the endpoint README's commands name


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    redis.Redis.from_url(REDIS_URL).flushdb()
    with chalice_local(tmp_path_factory.mktemp("sfn") / "chalice-local.log",
                       AWS_ACCESS_KEYS=",".join(f"{k}:{v}" for k, v in KEYS.items())) as base:
        yield base


def cli_env(key: str = "AKIDLOCAL", secret: str = "local-secret", **settings: str) -> dict:
    """The AWS CLI's environment: these credentials, region us-east-1, no profile or config file."""
    env = {**os.environ, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
           "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_MAX_ATTEMPTS": "1", **settings}
    env.pop("AWS_PROFILE", None)
    return env


#: What the AWS CLI was answered during the current test (checked after it).
CLI_ANSWERS: list[Answer] = []


@pytest.fixture(autouse=True)
def cli_answers_fit():
    CLI_ANSWERS.clear()
    yield
    if CLI_ANSWERS:
        assert_answers_fit(CLI_ANSWERS)


def run_cli(args: list[str], env: dict) -> tuple[int, dict, str]:
    """Run the AWS CLI (the ``awscli`` package, in a process of its own, as ``aws ARGS...`` runs it, see
    ``aws_cli``); (exit status, parsed JSON output, stderr). Its answers go to :data:`CLI_ANSWERS`."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "answers.jsonl")
        done = subprocess.run([sys.executable, "-m", "tests.api.aws_cli", path, *args], cwd=ROOT,
                              capture_output=True, text=True, env=env, timeout=60)
        with open(path, encoding="utf-8") as answers:
            for line in answers:
                answer = json.loads(line)
                CLI_ANSWERS.append(Answer(MODEL, answer["operation"], answer["status"], answer["headers"],
                                          base64.b64decode(answer["body"])))
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr


def aws(server: str, *args: str, key: str = "AKIDLOCAL", secret: str = "local-secret") -> tuple[int, dict, str]:
    """``aws stepfunctions --endpoint-url SERVER --output json ARGS...``."""
    return run_cli(["stepfunctions", "--endpoint-url", server, "--output", "json", *args], cli_env(key, secret))


def test_the_aws_cli_starts_describes_and_answers_an_execution(server):
    status, started, err = aws(server, "start-execution", "--state-machine-arn", machine_arn("incsquare"),
                               "--name", "cli-run", "--input", '{"value": 6}')
    assert status == 0, err
    assert started["executionArn"].endswith(":execution:incsquare:cli-run")
    status, described, err = aws(server, "describe-execution", "--execution-arn", started["executionArn"])
    assert status == 0, err
    assert (described["status"], json.loads(described["input"])) == ("RUNNING", {"value": 6})
    _, document = call("GET", f"{server}/executions/cli-run")
    token = document["continuations"][0]["id"]
    status, _, err = aws(server, "send-task-success", f"--task-token={token}", "--task-output", '{"by": "cli"}')
    assert status == 0, err
    _, described, _ = aws(server, "describe-execution", "--execution-arn", started["executionArn"])
    assert (described["status"], json.loads(described["output"])) == ("SUCCEEDED", {"value": 50, "by": "cli"})
    status, _, err = aws(server, "send-task-success", f"--task-token={token}", "--task-output", '{"by": "cli"}')
    assert status != 0 and "TaskTimedOut" in err


def test_the_aws_cli_with_a_wrong_secret_is_refused(server):
    status, _, err = aws(server, "describe-execution", "--execution-arn",
                         "arn:aws:states:us-east-1:000000000000:execution:incsquare:x", secret="wrong")
    assert status != 0 and "InvalidSignatureException" in err


def test_boto3_with_endpoint_url_over_http(server):
    answers: list = []
    sfn = over_http(server, key="AKIDLOCAL", secret="local-secret", answers=answers)
    started = sfn.start_execution(stateMachineArn=machine_arn("incsquare"), input='{"value": 2}')
    described = sfn.describe_execution(executionArn=started["executionArn"])
    assert described["status"] == "RUNNING"
    stopped = sfn.stop_execution(executionArn=started["executionArn"], cause="done with it")
    assert sfn.describe_execution(executionArn=started["executionArn"])["stopDate"] == stopped["stopDate"]
    with pytest.raises(ClientError) as raised:
        over_http(server, key="AKIDLOCAL", secret="nope", answers=answers).describe_execution(
            executionArn=started["executionArn"])
    assert raised.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert [(a.operation, a.status) for a in answers] == [
        ("StartExecution", 200), ("DescribeExecution", 200), ("StopExecution", 200), ("DescribeExecution", 200),
        ("DescribeExecution", 403)]
    assert_answers_fit(answers)


def test_a_worker_is_pointed_here_by_the_sdk_endpoint_setting_alone(server):
    """``AWS_ENDPOINT_URL_SFN``, the SDKs' own setting: no ``--endpoint-url`` in the command."""
    _, document = call("POST", f"{server}/executions",
                       json.dumps({"stateMachine": "incsquare", "input": {"value": 3}}).encode())
    token = document["continuations"][0]["id"]
    status, _, err = run_cli(["stepfunctions", "send-task-failure", f"--task-token={token}", "--error", "Nope"],
                             cli_env(AWS_ENDPOINT_URL_SFN=server))
    assert status == 0, err
    _, after = call("GET", f"{server}/executions/{document['executionId']}")
    assert (after["status"], after["error"]) == ("FAILED", "Nope")


# -- the README's commands, against the server as `make run` starts it ------------------------------

@pytest.fixture(scope="module")
def dev_server(tmp_path_factory):
    """``make run``'s server as it is: the ``dev`` stage, nothing configured, so no credentials checked."""
    redis.Redis.from_url(REDIS_URL).flushdb()
    with chalice_local(tmp_path_factory.mktemp("sfn-dev") / "chalice-local.log") as base:
        yield base


def readme_commands() -> list[list[str]]:
    """The commands of the first ``sh`` block of README's "Use it from the AWS CLI / boto3"."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        section = handle.read().split("## Use it from the AWS CLI / boto3", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line) for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def test_the_readme_boto3_example_runs_as_written_against_make_run(dev_server, capsys):
    """README's first ``python`` block of the section, with its endpoint URL pointed at the server."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        section = handle.read().split("## Use it from the AWS CLI / boto3", 1)[1]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert f'endpoint_url="{README_URL}"' in block
    exec(compile(block.replace(README_URL, dev_server), "README.md", "exec"), {})
    assert capsys.readouterr().out == "RUNNING\n"
    _, document = call("GET", f"{dev_server}/executions/try-1")
    assert (document["status"], document["stateMachine"], document["input"]) == ("SUSPENDED", "incsquare", {"value": 6})


def test_the_readme_commands_run_as_written_against_make_run(dev_server):
    commands = readme_commands()
    assert [words[:4] for words in commands] == [["aws", "stepfunctions", "--endpoint-url", README_URL]] * 4
    outputs = []
    for words in commands:
        args = [dev_server if word == README_URL else word for word in words[1:]]
        if "send-task-success" in args:  # the token the README writes K...: the one the execution waits on
            _, document = call("GET", f"{dev_server}/executions/order-17")
            token = document["continuations"][0]["id"]
            args = [f"--task-token={token}" if word == "--task-token=K..." else word for word in args]
            assert f"--task-token={token}" in args
        status, output, err = run_cli(args, cli_env("x", "x"))
        assert status == 0, (args, err)
        outputs.append(output)
    listed, started, described, answered = outputs
    assert [(a.operation, a.status) for a in CLI_ANSWERS] == [
        ("ListStateMachines", 200), ("StartExecution", 200), ("DescribeExecution", 200), ("SendTaskSuccess", 200)]
    assert "approval" in [machine["name"] for machine in listed["stateMachines"]]
    assert started["executionArn"] == described["executionArn"] \
        == "arn:aws:states:us-east-1:000000000000:execution:approval:order-17"
    assert described["status"] == "RUNNING" and answered == {}
    _, document = call("GET", f"{dev_server}/executions/order-17")
    assert (document["status"], document["output"]["outcome"]) == ("SUCCEEDED", "approved")


def test_the_aws_cli_tests_one_state(server, monkeypatch):
    # botocore sends TestState to "sync-<host>" (its hostPrefix); the setting AWS's docs name turns that off
    monkeypatch.setenv("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")
    state = {"Type": "Task", "Resource": "module:increment", "ResultPath": "$.after", "Next": "Done"}
    status, answer, err = aws(server, "test-state", "--definition", json.dumps(state), "--input", '{"value": 1}',
                              "--inspection-level", "DEBUG")
    assert status == 0, err
    assert (answer["status"], answer["nextState"]) == ("SUCCEEDED", "Done")
    assert json.loads(answer["output"]) == {"value": 1, "after": {"value": 2}}
    assert json.loads(answer["inspectionData"]["result"]) == {"value": 2}
    status, answer, err = aws(server, "test-state", "--definition", json.dumps(state),
                              "--mock", json.dumps({"errorOutput": {"error": "Boom", "cause": "mocked"}}))
    assert status == 0, err
    assert (answer["status"], answer["error"], answer["cause"]) == ("FAILED", "Boom", "mocked")


def test_the_aws_cli_redrives_a_stopped_execution(server):
    status, started, err = aws(server, "start-execution", "--state-machine-arn", machine_arn("incsquare"),
                               "--name", "cli-redrive", "--input", '{"value": 2}')
    assert status == 0, err
    arn = started["executionArn"]
    assert aws(server, "stop-execution", "--execution-arn", arn)[0] == 0
    status, redriven, err = aws(server, "redrive-execution", "--execution-arn", arn)
    assert status == 0, err
    _, described, _ = aws(server, "describe-execution", "--execution-arn", arn)
    assert (described["status"], described["redriveCount"]) == ("RUNNING", 1)
    assert described["redriveDate"] == redriven["redriveDate"]
    status, _, err = aws(server, "redrive-execution", "--execution-arn", arn)
    assert status != 0 and "ExecutionNotRedrivable" in err
