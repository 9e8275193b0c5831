"""The deployed API handler's side of things: API Gateway proxy events, a Lambda context, one invocation.

``app.app`` is the API handler of the Lambda package (``chalice package`` names it); it
takes API Gateway's REST API proxy events. :data:`INVOKE` calls a handler once in a
fresh interpreter, as a Lambda container would: the event on stdin, the response on stdout.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig

from ..conftest import ROOT

HOST = "abc123defg.execute-api.us-east-1.amazonaws.com"
FUNCTION_NAME = "asl-continuations-dev"

#: Runs in the fresh interpreter: one Lambda invocation of the API handler.
INVOKE = r"""
import json, sys

package, runtime, handler = sys.argv[1:4]
sys.path[:0] = [package, runtime]


class Context:
    function_name = "asl-continuations-dev"
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    memory_limit_in_mb = 512

    def get_remaining_time_in_millis(self):
        return 28000


module_name, attribute = handler.rsplit(".", 1)
entry = getattr(__import__(module_name), attribute)
response = entry(json.load(sys.stdin), Context())
for name in sys.argv[4:]:
    __import__(name)
files = {name: getattr(module, "__file__", None) for name, module in list(sys.modules.items())}
json.dump({"response": response, "modules": {k: v for k, v in files.items() if v}}, sys.stdout)
"""


class LambdaContext:
    """What the Lambda runtime passes a handler, as far as the app reads it."""

    function_name = FUNCTION_NAME
    aws_request_id = "00000000-0000-4000-8000-000000000001"
    memory_limit_in_mb = 512

    def get_remaining_time_in_millis(self) -> int:
        return 28000


def api_event(method: str, resource: str, path: str, parameters: dict | None = None,
              body: dict | None = None) -> dict:
    """An API Gateway (REST API) proxy event, as the deployed API handler receives it."""
    headers = {"Host": HOST, "X-Forwarded-Proto": "https", "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    return {
        "resource": resource, "path": path, "httpMethod": method,
        "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": parameters, "stageVariables": None,
        "requestContext": {"resourcePath": resource, "httpMethod": method, "path": "/api" + path,
                           "stage": "api", "domainName": HOST, "requestId": "request-1",
                           "identity": {"sourceIp": "203.0.113.7"}},
        "body": None if body is None else json.dumps(body), "isBase64Encoded": False,
    }


def stage_environment(stage: str = "dev") -> dict[str, str]:
    """The environment variables the stage's API handler function is deployed with (``.chalice/config.json``)."""
    from chalice.cli.factory import CLIFactory

    config = CLIFactory(ROOT).create_config_obj(chalice_stage_name=stage)
    return dict(config.scope(stage, "api_handler").environment_variables)


def invoke_source(event: dict, env: dict[str, str]) -> dict:
    """The response of one invocation of ``app.app`` from the source tree, in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", INVOKE, ROOT, sysconfig.get_paths()["purelib"], "app.app"],
        input=json.dumps(event), cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["response"]
