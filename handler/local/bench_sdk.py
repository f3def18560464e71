"""The SDK-path baseline: the main job with the official Huawei Cloud SDK for CSS and boto3 for SNS.

`CssClient` of huaweicloudsdkcss gets `BasicCredentials` with the project ID, so it never calls
IAM to look one up, and the emulator as its endpoint. boto3 reads the moto endpoint from
`AWS_ENDPOINT_URL` as the AWS SDKs do. `cold` runs the whole job once in this fresh process (see
`bench_job`). `calls` makes the same HTTP calls per message in a loop and reports their CPU time. Started by
`handler.local.bench` as `python -m handler.local.bench_sdk MODE`.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from handler.local.bench_protocol import LambdaContext, emit, peak_rss_kb, read_config, sqs_event


class SdkApi:
    """The check's calls through the SDKs; their response objects carry the attribute names `bench_job` reads."""

    def __init__(self, env: dict[str, str]) -> None:
        import boto3
        from huaweicloudsdkcore.auth.credentials import BasicCredentials
        from huaweicloudsdkcss.v1 import CssClient

        credentials = BasicCredentials(env["HUAWEICLOUD_SDK_AK"], env["HUAWEICLOUD_SDK_SK"], env["CSS_PROJECT_ID"])
        self.css = CssClient.new_builder().with_credentials(credentials).with_endpoints([env["CSS_ENDPOINT"]]).build()
        self.sns = boto3.client("sns")
        self.topic_arn = env["NOTIFY_TOPIC_ARN"]

    def show_cluster(self, message: Any) -> Any:
        from huaweicloudsdkcss.v1 import ShowClusterDetailRequest

        return self.css.show_cluster_detail(ShowClusterDetailRequest(cluster_id=message.cluster_id))

    def list_images(self, message: Any, upgrade_type: str) -> list[Any]:
        from huaweicloudsdkcss.v1 import ListImagesRequest

        request = ListImagesRequest(cluster_id=message.cluster_id, upgrade_type=upgrade_type, offset="0", limit="1000")
        return self.css.list_images(request).image_info_list or []

    def publish(self, message: str, subject: str, attributes: dict[str, str]) -> None:
        self.sns.publish(
            TopicArn=self.topic_arn,
            Message=message,
            MessageStructure="json",
            Subject=subject,
            MessageAttributes={name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()},
        )


def run_cold(config: dict[str, Any]) -> dict[str, Any]:
    """Import the SDK path's stack and process one SQS batch to the end."""
    import os

    started = time.perf_counter()
    import boto3  # noqa: F401 - imported here so that the import clock counts it
    import huaweicloudsdkcore.auth.credentials  # noqa: F401
    import huaweicloudsdkcss.v1  # noqa: F401

    from handler.local import bench_job

    imported = time.perf_counter()
    env = dict(os.environ)
    handler = bench_job.make_handler(lambda: SdkApi(env), env["CSS_PROJECT_ID"], env["CSS_REGION"])
    response = handler(sqs_event(config["bodies"]), LambdaContext())
    finished_at = time.monotonic()
    return {
        "finished_at": finished_at,
        "import_seconds": imported - started,
        "work_seconds": time.perf_counter() - imported,
        "cpu_seconds": time.process_time(),
        "peak_rss_kb": peak_rss_kb(),
        "failures": len(response["batchItemFailures"]),
        "modules": len(sys.modules),
    }


def run_calls(config: dict[str, Any]) -> dict[str, Any]:
    """Make each message's calls through the SDKs in a loop and report their CPU time."""
    import os

    from huaweicloudsdkcss.v1 import ListImagesRequest, ShowClusterDetailRequest

    api = SdkApi(dict(os.environ))
    attributes = {name: {"DataType": "String", "StringValue": value} for name, value in config["sns_attributes"].items()}

    def calls(cluster_id: str) -> None:
        api.css.show_cluster_detail(ShowClusterDetailRequest(cluster_id=cluster_id))
        for upgrade_type in ("same", "cross"):
            api.css.list_images(ListImagesRequest(cluster_id=cluster_id, upgrade_type=upgrade_type, offset="0", limit="1000"))
        api.sns.publish(
            TopicArn=api.topic_arn,
            Message=config["sns_message"],
            MessageStructure="json",
            Subject=config["sns_subject"],
            MessageAttributes=attributes,
        )

    for cluster_id in config["warmup_cluster_ids"]:
        calls(cluster_id)
    started = time.process_time()
    wall_started = time.perf_counter()
    for cluster_id in config["cluster_ids"]:
        calls(cluster_id)
    return {
        "messages": len(config["cluster_ids"]),
        "cpu_seconds": time.process_time() - started,
        "wall_seconds": time.perf_counter() - wall_started,
    }


MODES = {"cold": run_cold, "calls": run_calls}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in MODES:
        print(f"usage: python -m handler.local.bench_sdk {{{','.join(MODES)}}}", file=sys.stderr)
        return 2
    emit(MODES[argv[0]](read_config()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
