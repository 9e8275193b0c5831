"""The Lambda package that ``chalice package`` builds runs on its own.

``chalice package`` needs a region but no AWS credentials. The package is
unzipped and its handler is called in fresh interpreters that see only the
package, the standard library and what the Lambda Python runtime adds (boto3
and its dependencies) — as on AWS Lambda, where nothing of the source tree
exists. The Terraform output of both stages is checked against the limits of
API Gateway and Lambda.
"""
from __future__ import annotations

import fnmatch
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest

from ..conftest import REDIS_URL, ROOT
from ..make_run import chalice_command
from .lambda_events import HOST, INVOKE, api_event

REGION = "us-east-1"
API_GATEWAY_TIMEOUT = 29  # seconds: API Gateway's limit for a Lambda integration
LAMBDA_MAX_TIMEOUT = 900

#: What the Lambda Python runtime provides besides the standard library.
RUNTIME_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
#: Import names of requirements.txt; each must come from the package.
REQUIRED_IMPORTS = ("redis", "jsonpath_ng", "statelint", "jsonata", "jinja2", "certifi", "re2")
#: Not part of a project: version control, virtualenvs, caches, local data.
NOT_PROJECT = shutil.ignore_patterns(".git", ".venv", "venv", ".local", ".pytest_cache", "__pycache__",
                                     "deployments", "deployed", "outbox", "*.db")


def chalice(*args: str, cwd: str) -> None:
    env = {**os.environ, "AWS_DEFAULT_REGION": REGION}
    result = subprocess.run([chalice_command(), *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> str:
    """A copy of the project (symlinks kept), so builds never touch the working tree."""
    path = str(tmp_path_factory.mktemp("project") / "asl-continuations")
    shutil.copytree(ROOT, path, symlinks=True, ignore=NOT_PROJECT)
    return path


@pytest.fixture(scope="module")
def lambda_runtime(tmp_path_factory) -> str:
    """A folder exposing only the Lambda runtime's own packages (those installed here)."""
    path = tmp_path_factory.mktemp("runtime")
    for name in RUNTIME_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        source = os.path.dirname(spec.origin) if spec.submodule_search_locations else spec.origin
        os.symlink(source, path / os.path.basename(source))
    return str(path)


@pytest.fixture(scope="module")
def package(project, tmp_path_factory) -> dict:
    """``chalice package`` (CloudFormation), its zip unzipped, and the API handler's settings."""
    out = tmp_path_factory.mktemp("out")
    chalice("package", str(out / "sam"), cwd=project)
    folder = str(tmp_path_factory.mktemp("lambda") / "task")
    with zipfile.ZipFile(out / "sam" / "deployment.zip") as archive:
        archive.extractall(folder)
    with open(out / "sam" / "sam.json", encoding="utf-8") as handle:
        api = json.load(handle)["Resources"]["APIHandler"]["Properties"]
    return {"folder": folder, "handler": api["Handler"],
            "environment": api["Environment"]["Variables"] if "Environment" in api else {}}


def allowed_roots(package: dict, runtime: str) -> tuple[list[str], str]:
    return [package["folder"] + os.sep, runtime + os.sep], sysconfig.get_paths()["stdlib"] + os.sep


def invoke(package: dict, runtime: str, event: dict) -> tuple[int, dict, dict]:
    """One invocation in a fresh interpreter (-I: no environment, no user site; -S: no site-packages)."""
    env = {**package["environment"], "REDIS_URL": REDIS_URL, "AWS_REGION": REGION,
           "AWS_DEFAULT_REGION": REGION, "AWS_LAMBDA_FUNCTION_NAME": "asl-continuations-dev",
           "LAMBDA_TASK_ROOT": package["folder"]}
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", INVOKE, package["folder"], runtime, package["handler"],
         *REQUIRED_IMPORTS],
        input=json.dumps(event), cwd=package["folder"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    modules = answer["modules"]
    roots, stdlib = allowed_roots(package, runtime)
    leaked = {name: file for name, file in modules.items()
              if not file.startswith(tuple(roots))
              and not (file.startswith(stdlib) and "site-packages" not in file[len(stdlib):])}
    assert leaked == {}
    for name in ("app", "chalice", "chalicelib", "chalicelib.service.catalog", *REQUIRED_IMPORTS):
        assert modules[name].startswith(roots[0]), name
    response = answer["response"]
    return response["statusCode"], json.loads(response["body"]), response["headers"]


def test_the_package_contains_the_state_machines(package):
    """The definitions, and beside them their start rules (rules/) and event simulations."""
    folder = os.path.join(ROOT, "state_machines")
    expected = sorted(os.path.join(top, file)[len(folder) + 1:] for top, _, files in os.walk(folder)
                      for file in files if file.endswith(".json"))
    assert "rules/car-dealer.json" in expected
    packaged_folder = os.path.join(package["folder"], "state_machines")
    assert sorted(os.path.join(top, file)[len(packaged_folder) + 1:] for top, _, files in os.walk(packaged_folder)
                  for file in files) == expected
    for name in expected:
        with open(os.path.join(ROOT, "state_machines", name), "rb") as source, \
                open(os.path.join(package["folder"], "state_machines", name), "rb") as packaged:
            assert packaged.read() == source.read(), name


def test_the_deployed_handler_runs_the_examples(package, lambda_runtime, redis_client):
    status, listing, headers = invoke(package, lambda_runtime, api_event("GET", "/state-machines", "/state-machines"))
    shipped = sorted(f[:-5] for f in os.listdir(os.path.join(ROOT, "state_machines")) if f.endswith(".json"))
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert sorted(m["name"] for m in listing["stateMachines"]) == shipped

    start = {"stateMachine": "incsquare", "input": {"value": 6}}
    status, document, _ = invoke(package, lambda_runtime, api_event("POST", "/executions", "/executions", body=start))
    assert status == 200, document
    assert document["status"] == "SUSPENDED"
    [waiting] = document["continuations"]
    assert waiting["parameters"] == {"value": 49}  # (6 + 1) ** 2
    # Without PUBLIC_BASE_URL, links point at the API Gateway stage that was called.
    assert waiting["url"] == f"https://{HOST}/api/continuations/{waiting['id']}"

    resource = "/continuations/{continuation}"
    path = "/continuations/" + waiting["id"]
    answer = {"note": "approved by the package test"}
    status, finished, _ = invoke(package, lambda_runtime,
                                 api_event("POST", resource, path, {"continuation": waiting["id"]}, answer))
    assert status == 200, finished
    assert finished["status"] == "SUCCEEDED"
    assert finished["output"] == {"value": 50, "note": "approved by the package test"}

    status, info, _ = invoke(package, lambda_runtime, api_event("GET", resource, path, {"continuation": waiting["id"]}))
    assert status == 200, info
    assert info["status"] == "redeemed" and info["executionStatus"] == "SUCCEEDED"
    assert info["executionId"] == document["executionId"]


# -- Terraform ------------------------------------------------------------------------------

def stage_config(stage: str) -> dict:
    with open(os.path.join(ROOT, ".chalice", "config.json"), encoding="utf-8") as handle:
        return json.load(handle)["stages"][stage]


def allows(policy: dict, action: str, resource: str) -> bool:
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if statement["Effect"] == "Allow" and any(fnmatch.fnmatchcase(action, a) for a in actions) \
                and any(fnmatch.fnmatchcase(resource, r) for r in resources):
            return True
    return False


def role_policy(resources: dict, function: dict) -> dict:
    role = function["role"].split(".")[1]  # "${aws_iam_role.<role>.arn}"
    [policy] = [p["policy"] for p in resources["aws_iam_role_policy"].values()
                if p["role"] == "${aws_iam_role.%s.id}" % role]
    return json.loads(policy)


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_terraform_configuration_is_complete(project, tmp_path, stage):
    chalice("package", "--stage", stage, "--pkg-format", "terraform", str(tmp_path), cwd=project)
    with open(tmp_path / "chalice.tf.json", encoding="utf-8") as handle:
        resources = json.load(handle)["resource"]
    functions = resources["aws_lambda_function"]
    api, worker, timers = functions["api_handler"], functions["continue_execution"], functions["fire_timers"]
    assert (tmp_path / "deployment.zip").is_file()

    assert api["handler"] == "app.app" and api["runtime"] == "python3.11"
    assert api["timeout"] < API_GATEWAY_TIMEOUT
    variables = api["environment"]["variables"]
    # The request budget ends well before the function is cut off, leaving time to checkpoint.
    assert float(variables.get("REQUEST_MAX_SECONDS", "10")) + 5 <= api["timeout"]
    assert worker["handler"] == "app.continue_execution"
    assert api["timeout"] < worker["timeout"] <= LAMBDA_MAX_TIMEOUT
    # The API handler hands long executions to the continue_execution function, and may.
    assert variables["CONTINUE_FUNCTION_NAME"] == worker["function_name"]
    worker_arn = f"arn:aws:lambda:{REGION}:123456789012:function:{worker['function_name']}"
    assert allows(role_policy(resources, api), "lambda:InvokeFunction", worker_arn)
    assert allows(role_policy(resources, api), "logs:PutLogEvents",
                  f"arn:aws:logs:{REGION}:123456789012:log-group:/aws/lambda/{api['function_name']}:log-stream:x")

    assert timers["handler"] == "app.fire_timers"
    [(rule_name, rule)] = resources["aws_cloudwatch_event_rule"].items()
    assert rule["schedule_expression"].startswith("rate(")
    [target] = resources["aws_cloudwatch_event_target"].values()
    assert target["rule"] == "${aws_cloudwatch_event_rule.%s.name}" % rule_name
    assert target["arn"] == "${aws_lambda_function.fire_timers.arn}"

    subnets = stage_config(stage).get("subnet_ids")
    for function in (api, worker, timers):
        if subnets:  # every function talks to Redis, so all of them run in the VPC
            assert function["vpc_config"]["subnet_ids"] == subnets
            assert function["vpc_config"]["security_group_ids"]
            assert allows(role_policy(resources, function), "ec2:CreateNetworkInterface", "*")
        else:
            assert "vpc_config" not in function
