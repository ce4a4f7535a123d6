"""S3 over a real three-process cluster (`mucura local-cluster`): every node answers for every
object, and writes and reads go on while a node is killed and after it comes back."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from s3_helpers import MIB, make_s3_client
from test_local_cluster import LocalCluster, alive


@pytest.fixture(scope="module")
def cluster(mucura_binary, tmp_path_factory):
    running = LocalCluster(mucura_binary, tmp_path_factory.mktemp("s3-cluster"))
    running.wait_all_up("all three nodes Up with layout v1")
    yield running
    running.close()


def clients(cluster: LocalCluster):
    info = cluster.info
    return [
        make_s3_client(f"http://{node['s3']}", info["access_key"], info["secret_key"])
        for node in cluster.nodes
    ]


def wait_for_bucket(s3_clients, bucket: str, seconds: float = 5.0):
    """Bucket names are a full-copy table acknowledged by a majority; the last node may lag."""
    deadline = time.monotonic() + seconds
    for s3 in s3_clients:
        while True:
            try:
                s3.head_bucket(Bucket=bucket)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def test_objects_written_through_one_node_are_read_through_every_node(cluster):
    s3 = clients(cluster)
    s3[0].create_bucket(Bucket="everywhere")
    wait_for_bucket(s3, "everywhere")
    written = {}
    for index in range(12):
        size = [0, 700, 9_000, 3 * MIB + 5][index % 4]
        data = os.urandom(size)
        s3[index % 3].put_object(Bucket="everywhere", Key=f"dir/{index:02}", Body=data)
        written[f"dir/{index:02}"] = data
    for node, client in enumerate(s3):
        for key, data in written.items():
            got = client.get_object(Bucket="everywhere", Key=key)["Body"].read()
            assert got == data, (node, key)
        listed = client.list_objects_v2(Bucket="everywhere", Prefix="dir/", Delimiter="/")
        assert [o["Key"] for o in listed["Contents"]] == sorted(written), node
        ranged = client.get_object(Bucket="everywhere", Key="dir/03", Range="bytes=1048570-1048580")
        assert ranged["Body"].read() == written["dir/03"][1048570:1048581]
    s3[2].delete_object(Bucket="everywhere", Key="dir/00")
    for client in s3:
        assert client.list_objects_v2(Bucket="everywhere")["KeyCount"] == 11


def test_writes_and_reads_go_on_while_a_node_is_killed_and_after_it_returns(cluster):
    s3 = clients(cluster)
    s3[0].create_bucket(Bucket="survives")
    wait_for_bucket(s3, "survives")
    victim = cluster.nodes[1]
    os.kill(victim["pid"], signal.SIGKILL)
    written = {}
    for index in range(30):
        data = os.urandom([100, 20_000, 2 * MIB][index % 3])
        s3[0 if index % 2 else 2].put_object(Bucket="survives", Key=f"k{index}", Body=data)
        written[f"k{index}"] = data
    for key, data in written.items():
        assert s3[2].get_object(Bucket="survives", Key=key)["Body"].read() == data
    assert s3[0].list_objects_v2(Bucket="survives")["KeyCount"] == 30

    restarted = subprocess.Popen(
        victim["argv"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cluster.env
    )
    cluster.extra.append(restarted)
    cluster.nodes[1] = {**victim, "pid": restarted.pid}
    cluster.wait_all_up("the killed node Up again everywhere")
    for key, data in written.items():
        assert s3[1].get_object(Bucket="survives", Key=key)["Body"].read() == data, key
    assert not alive(victim["pid"])
