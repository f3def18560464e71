"""The floor baseline: the main job with nothing but requests, requests-aws4auth, pydantic and Powertools.

It signs the CSS calls with a minimal inline SDK-HMAC-SHA256 (no input checks, only the headers it
sends itself) and the SNS publish with requests-aws4auth. `cold` runs the whole job once in this
fresh process (see `bench_job`). `calls` makes the same HTTP calls per message in a bare loop and
reports their CPU time. Started by `handler.local.bench` as `python -m handler.local.bench_floor MODE`.
"""

from __future__ import annotations

import hashlib
import hmac
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from handler.local.bench_protocol import LambdaContext, emit, peak_rss_kb, read_config, sqs_event


def css_headers(method: str, url: str, project_id: str, ak: str, sk: str) -> dict[str, str]:
    """Return the headers of a signed CSS GET: the canonical request, string to sign and HMAC, inline."""
    parts = urlsplit(url)
    date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    headers = {"Content-Type": "application/json", "Host": parts.netloc, "X-Project-Id": project_id, "X-Sdk-Date": date}
    signed = "content-type;host;x-project-id;x-sdk-date"
    canonical_headers = "".join(f"{name.lower()}:{value}\n" for name, value in sorted(headers.items(), key=lambda item: item[0].lower()))
    query = "&".join(sorted(parts.query.split("&"))) if parts.query else ""
    canonical = "\n".join([method, parts.path + "/", query, canonical_headers, signed, hashlib.sha256(b"").hexdigest()])
    string_to_sign = f"SDK-HMAC-SHA256\n{date}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    signature = hmac.new(sk.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = f"SDK-HMAC-SHA256 Access={ak}, SignedHeaders={signed}, Signature={signature}"
    return headers


def sns_form(topic_arn: str, message: str, subject: str, attributes: dict[str, str]) -> dict[str, str]:
    """Return the query-protocol form of an SNS Publish with a per-protocol message and String attributes."""
    form = {
        "Action": "Publish",
        "Version": "2010-03-31",
        "TopicArn": topic_arn,
        "Message": message,
        "MessageStructure": "json",
        "Subject": subject,
    }
    for number, (name, value) in enumerate(attributes.items(), start=1):
        form[f"MessageAttributes.entry.{number}.Name"] = name
        form[f"MessageAttributes.entry.{number}.Value.DataType"] = "String"
        form[f"MessageAttributes.entry.{number}.Value.StringValue"] = value
    return form


class FloorApi:
    """The check's calls over one `requests.Session`; responses validated with the pydantic models of `bench_job`."""

    def __init__(self, env: dict[str, str]) -> None:
        import requests
        from requests_aws4auth import AWS4Auth

        self.session = requests.Session()
        self.endpoint = env["CSS_ENDPOINT"]
        self.ak = env["HUAWEICLOUD_SDK_AK"]
        self.sk = env["HUAWEICLOUD_SDK_SK"]
        self.sns_url = env["AWS_ENDPOINT_URL"] + "/"
        self.topic_arn = env["NOTIFY_TOPIC_ARN"]
        self.sns_auth = AWS4Auth(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_REGION"], "sns")

    def get_json(self, path: str, project_id: str, query: str = "") -> Any:
        url = self.endpoint + path + (f"?{query}" if query else "")
        response = self.session.get(url, headers=css_headers("GET", url, project_id, self.ak, self.sk), timeout=(3.05, 15))
        response.raise_for_status()
        return response.json()

    def show_cluster(self, message: Any) -> Any:
        from handler.local.bench_job import ClusterDetail

        data = self.get_json(f"/v1.0/{message.project_id}/clusters/{message.cluster_id}", message.project_id)
        return ClusterDetail.model_validate(data)

    def list_images(self, message: Any, upgrade_type: str) -> list[Any]:
        from handler.local.bench_job import ImagePage

        path = f"/v1.0/{message.project_id}/clusters/{message.cluster_id}/target/{upgrade_type}/images"
        return ImagePage.model_validate(self.get_json(path, message.project_id, "offset=0&limit=1000")).image_info_list

    def publish(self, message: str, subject: str, attributes: dict[str, str]) -> None:
        form = sns_form(self.topic_arn, message, subject, attributes)
        response = self.session.post(self.sns_url, data=form, auth=self.sns_auth, timeout=(3.05, 10))
        response.raise_for_status()


def run_cold(config: dict[str, Any]) -> dict[str, Any]:
    """Import the floor's stack and process one SQS batch to the end."""
    import os

    started = time.perf_counter()
    import requests  # noqa: F401 - imported here so that the import clock counts it
    import requests_aws4auth  # noqa: F401

    from handler.local import bench_job

    imported = time.perf_counter()
    env = dict(os.environ)
    handler = bench_job.make_handler(lambda: FloorApi(env), env["CSS_PROJECT_ID"], env["CSS_REGION"])
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
    """Make each message's HTTP calls in a bare loop (decode the JSON, nothing more) and report their CPU time."""
    import os

    api = FloorApi(dict(os.environ))
    project_id = os.environ["CSS_PROJECT_ID"]

    def calls(cluster_id: str) -> None:
        cluster_path = f"/v1.0/{project_id}/clusters/{cluster_id}"
        api.get_json(cluster_path, project_id)
        for upgrade_type in ("same", "cross"):
            api.get_json(f"{cluster_path}/target/{upgrade_type}/images", project_id, "offset=0&limit=1000")
        api.publish(config["sns_message"], config["sns_subject"], config["sns_attributes"])

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
        print(f"usage: python -m handler.local.bench_floor {{{','.join(MODES)}}}", file=sys.stderr)
        return 2
    emit(MODES[argv[0]](read_config()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
