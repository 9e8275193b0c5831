"""The Step Functions API over HTTP: boto3 with ``endpoint_url`` and the AWS CLI against ``chalice local``
(started with ``make run``'s command), on a stage with AWS credentials configured, so every request
carries a real SigV4 signature over the wire."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import redis
from botocore.exceptions import ClientError

from ..conftest import REDIS_URL
from ..local_server import call, chalice_local
from .aws_clients import assert_answers_fit, machine_arn, over_http

KEYS = {"AKIDLOCAL": "local-secret"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    redis.Redis.from_url(REDIS_URL).flushdb()
    with chalice_local(tmp_path_factory.mktemp("sfn") / "chalice-local.log",
                       AWS_ACCESS_KEYS=",".join(f"{k}:{v}" for k, v in KEYS.items())) as base:
        yield base


def aws(server: str, *args: str, key: str = "AKIDLOCAL", secret: str = "local-secret") -> tuple[int, dict, str]:
    """Run the AWS CLI (``aws stepfunctions ... --endpoint-url``); (exit status, parsed JSON output, stderr)."""
    cli = os.path.join(os.path.dirname(sys.executable), "aws")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
           "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_MAX_ATTEMPTS": "1"}
    env.pop("AWS_PROFILE", None)
    done = subprocess.run([cli, "stepfunctions", "--endpoint-url", server, "--output", "json", *args],
                          capture_output=True, text=True, env=env, timeout=60)
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr


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
    cli = os.path.join(os.path.dirname(sys.executable), "aws")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "AKIDLOCAL", "AWS_SECRET_ACCESS_KEY": "local-secret",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
           "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_ENDPOINT_URL_SFN": server}
    _, document = call("POST", f"{server}/executions",
                       json.dumps({"stateMachine": "incsquare", "input": {"value": 3}}).encode())
    token = document["continuations"][0]["id"]
    done = subprocess.run([cli, "stepfunctions", "send-task-failure", f"--task-token={token}", "--error", "Nope"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    _, after = call("GET", f"{server}/executions/{document['executionId']}")
    assert (after["status"], after["error"]) == ("FAILED", "Nope")
