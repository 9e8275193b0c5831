"""Run the AWS CLI as its ``aws`` command does, and append every answer it gets to a file, so the
tests hold the CLI's answers to the same check as boto3's (``aws_clients.answer_problems``)::

    python -m tests.api.aws_cli ANSWERS_FILE ARGS...

Each line of ANSWERS_FILE is one answer: ``{"operation", "status", "headers", "body"}`` (the body
base64-encoded, as received).
"""
from __future__ import annotations

import base64
import json
import sys

from awscli.clidriver import create_clidriver


def main(path: str, args: list[str]) -> int:
    driver = create_clidriver()
    with open(path, "a", encoding="utf-8") as answers:
        def after_call(http_response, model, **_):
            answers.write(json.dumps({"operation": model.name, "status": http_response.status_code,
                                      "headers": dict(http_response.headers),
                                      "body": base64.b64encode(http_response.content or b"").decode()}) + "\n")

        driver.session.register("after-call", after_call)
        return driver.main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
