"""Prometheus metrics on the admin port and the JSON access log follow what boto3 does."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

from s3_helpers import expect_s3_error

# The access log is flushed every second; allow a loaded machine some slack.
ACCESS_LOG_WAIT_SECONDS = 10.0

SAMPLE_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

Samples = dict[tuple[str, frozenset], float]


def scrape(mucura) -> tuple[str, Samples]:
    """GETs /metrics without any token; returns the content type and the parsed samples."""
    with urllib.request.urlopen(f"{mucura.admin_url}/metrics", timeout=10) as response:
        assert response.status == 200
        content_type = response.headers.get("Content-Type", "")
        text = response.read().decode()
    samples: Samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE_LINE.match(line)
        assert match, f"not a sample line of the text format: {line!r}"
        name, labels, value = match.groups()
        label_set = frozenset(LABEL.findall(labels or ""))
        samples[(name, label_set)] = float(value)
    return content_type, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """One series' value (0 when the series does not exist yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests_delta(before: Samples, after: Samples, operation: str, status: int) -> float:
    name = "mucura_s3_requests_total"
    labels = {"operation": operation, "status": str(status)}
    return value(after, name, **labels) - value(before, name, **labels)


def access_log_lines(data_dir: Path, request_ids: set[str]) -> dict[str, dict]:
    """Waits until the access log holds a line for each request id; returns them by id."""
    path = data_dir / "logs" / "access.log"
    deadline = time.monotonic() + ACCESS_LOG_WAIT_SECONDS
    found: dict[str, dict] = {}
    while time.monotonic() < deadline:
        found = {}
        if path.exists():
            for line in path.read_text().splitlines():
                entry = json.loads(line)
                if entry["request_id"] in request_ids:
                    found[entry["request_id"]] = entry
        if set(found) == request_ids:
            return found
        time.sleep(0.2)
    missing = request_ids - set(found)
    raise AssertionError(f"no access log line in {path} for request ids {sorted(missing)}")


def anonymous_get(url: str) -> tuple[int, str]:
    """An unsigned GET; returns the status and the request id header."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers.get("x-amz-request-id", "")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("x-amz-request-id", "")


def test_metrics_and_access_log_follow_requests(mucura, s3, bucket):
    content_type, before = scrape(mucura)
    assert content_type.startswith("text/plain; version=0.0.4"), content_type

    data = b"observed " * 1000
    put = s3.put_object(Bucket=bucket, Key="obs/one.txt", Body=data)
    got = s3.get_object(Bucket=bucket, Key="obs/one.txt")
    assert got["Body"].read() == data
    with expect_s3_error("NoSuchKey", 404) as missing:
        s3.get_object(Bucket=bucket, Key="obs/missing.txt")
    status, anonymous_id = anonymous_get(f"{mucura.endpoint}/{bucket}/obs/one.txt")
    assert status == 403 and anonymous_id

    _, after = scrape(mucura)
    assert requests_delta(before, after, "PutObject", 200) >= 1
    assert requests_delta(before, after, "GetObject", 200) >= 1
    assert requests_delta(before, after, "GetObject", 404) >= 1
    # Anonymous requests are routed, then refused by the bucket's (private) ACL.
    assert requests_delta(before, after, "GetObject", 403) >= 1
    for code in ("NoSuchKey", "AccessDenied"):
        errors = value(after, "mucura_s3_errors_total", code=code)
        assert errors - value(before, "mucura_s3_errors_total", code=code) >= 1, code
    for name in ("mucura_s3_received_bytes_total", "mucura_s3_sent_bytes_total"):
        assert value(after, name) - value(before, name) >= len(data), name
    duration_count = "mucura_s3_request_duration_seconds_count"
    assert value(after, duration_count, operation="PutObject") > value(
        before, duration_count, operation="PutObject"
    )
    assert value(after, "mucura_objects") >= 1
    assert value(after, "mucura_buckets") >= 1
    assert value(after, "mucura_object_bytes") >= len(data)
    assert value(after, "mucura_metadata_disk_bytes") > 0
    dir_label = str(mucura.data_dir)
    assert value(after, "mucura_disk_total_bytes", dir=dir_label) > 0
    assert value(after, "mucura_disk_free_bytes", dir=dir_label) > 0
    assert value(after, "mucura_process_start_time_seconds") > time.time() - 24 * 3600
    assert any(name == "mucura_build_info" for name, _ in after)

    put_id = put["ResponseMetadata"]["RequestId"]
    get_id = got["ResponseMetadata"]["RequestId"]
    missing_id = missing.error.response["ResponseMetadata"]["RequestId"]
    lines = access_log_lines(mucura.data_dir, {put_id, get_id, missing_id, anonymous_id})

    put_line = lines[put_id]
    assert put_line["operation"] == "PutObject"
    assert put_line["method"] == "PUT"
    assert put_line["status"] == 200
    assert put_line["bucket"] == bucket
    assert put_line["key"] == "obs/one.txt"
    assert put_line["user"] == "root"
    assert put_line["access_key"] == mucura.access_key
    assert put_line["remote_addr"].startswith("127.0.0.1:")
    # aws-chunked framing, when boto3 uses it, counts as received bytes too.
    assert put_line["bytes_in"] >= len(data)
    assert put_line["error_code"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", put_line["time"])
    assert put_line["duration_ms"] >= 0

    get_line = lines[get_id]
    assert get_line["operation"] == "GetObject"
    assert get_line["bytes_out"] == len(data)
    assert get_line["status"] == 200

    missing_line = lines[missing_id]
    assert missing_line["status"] == 404
    assert missing_line["error_code"] == "NoSuchKey"
    assert missing_line["key"] == "obs/missing.txt"

    anonymous_line = lines[anonymous_id]
    assert anonymous_line["status"] == 403
    assert anonymous_line["error_code"] == "AccessDenied"
    assert anonymous_line["operation"] == "GetObject"
    assert anonymous_line["user"] is None
    assert anonymous_line["bucket"] == bucket


def test_admin_routes_other_than_metrics_still_need_the_token(mucura):
    try:
        urllib.request.urlopen(f"{mucura.admin_url}/v1/status", timeout=10)
        raise AssertionError("/v1/status answered without a token")
    except urllib.error.HTTPError as error:
        assert error.code == 401
