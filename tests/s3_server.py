"""A real S3 API on this machine for the tests: moto's server mode, started as a subprocess on a free port."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def s3_server():
    """Yield the endpoint URL of a moto S3 server that lives as long as the block."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def s3_environment(url: str) -> dict[str, str]:
    """What a process needs to reach that server with boto3 (the standard endpoint setting)."""
    return {"AWS_ENDPOINT_URL_S3": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1"}


def use_s3(monkeypatch, url: str):
    """Point this process's boto3 at ``url``; a boto3 S3 client for the test's own checks."""
    import boto3

    from chalicelib.resources import aws

    for name, value in s3_environment(url).items():
        monkeypatch.setenv(name, value)
    for key in [key for key in aws._clients if key[0] == "s3"]:
        del aws._clients[key]
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def s3_url():
    """A moto S3 server for the test module (import this fixture and ``s3`` into the module)."""
    with s3_server() as url:
        yield url


@pytest.fixture
def s3(s3_url, monkeypatch):
    """A boto3 S3 client of that server, with a bucket of the test's own (``client.bucket``)."""
    client = use_s3(monkeypatch, s3_url)
    client.bucket = f"test-{os.getpid()}-{id(monkeypatch)}"
    client.create_bucket(Bucket=client.bucket)
    return client
