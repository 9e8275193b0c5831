"""A Distributed Map through ``chalice local`` as ``make run`` starts it: items read from S3 (moto's server),
children run by the local worker threads, results written back to S3."""
from __future__ import annotations

import json
import time

import boto3

from ..local_server import call, chalice_local
from ..s3_server import s3_environment, s3_server


def test_a_csv_in_batches_through_chalice_local_with_results_in_s3(tmp_path, redis_client):
    with s3_server() as s3_url:
        s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
        s3.create_bucket(Bucket="data")
        rows = "".join(f"{n},item {n}\n" for n in range(300))
        s3.put_object(Bucket="data", Key="in/items.csv", Body=("id,name\n" + rows).encode())
        definition = {"StartAt": "Each", "States": {"Each": {
            "Type": "Map", "End": True, "Label": "Rows",
            "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                           "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
                           "Parameters": {"Bucket": "data", "Key": "in/items.csv"}},
            "ItemBatcher": {"MaxItemsPerBatch": 25},
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                              "StartAt": "Count", "States": {"Count": {
                                  "Type": "Pass", "Parameters": {"first.$": "$.Items[0].id",
                                                                 "count.$": "States.ArrayLength($.Items)"},
                                  "End": True}}},
            "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                             "Parameters": {"Bucket": "data", "Prefix": "out"},
                             "WriterConfig": {"Transformation": "COMPACT", "OutputType": "JSON"}}}}}
        env = {**s3_environment(s3_url), "ALLOWED_RESOURCES": "module:*,arn:aws:states:::s3:*",
               "LOCAL_MAP_WORKERS": "4"}
        with chalice_local(tmp_path / "local.log", **env) as base:
            status, started = call("POST", base + "/executions", json.dumps(
                {"definition": definition, "input": {}}).encode())
            assert status in (200, 202), started
            assert started["status"] == "SUSPENDED" and started["mapRuns"][0]["counts"]["total"] == 12
            deadline = time.monotonic() + 120
            while True:
                status, document = call("GET", f"{base}/executions/{started['executionId']}")
                if document["status"] != "SUSPENDED":
                    break
                assert time.monotonic() < deadline, document
                time.sleep(0.1)
        assert document["status"] == "SUCCEEDED", document
        details = document["output"]["ResultWriterDetails"]
        manifest = json.loads(s3.get_object(Bucket="data", Key=details["Key"])["Body"].read())
        [written] = manifest["ResultFiles"]["SUCCEEDED"]
        results = json.loads(s3.get_object(Bucket="data", Key=written["Key"])["Body"].read())
        assert results == [{"first": str(25 * n), "count": 25} for n in range(12)]
