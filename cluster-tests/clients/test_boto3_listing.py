"""boto3: ListObjectsV2, ListObjects (v1) and ListObjectVersions over 1100 keys.

Note that botocore asks for `encoding-type=url` on every listing unless told otherwise and
decodes the answer, so every listing here also exercises URL encoding of keys.
"""

from __future__ import annotations

import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest

from s3_helpers import empty_and_delete_bucket, etag_of, unique_bucket_name


def build_keys() -> list[str]:
    """1100 keys in S3's (UTF-8 byte) order, shaped to test delimiters and prefixes."""
    keys = [f"a/{index:04d}" for index in range(500)]
    keys += [f"b/x/{index:04d}" for index in range(300)]
    keys += [f"c{index:04d}" for index in range(250)]
    keys += [f"z/{index:02d}/leaf" for index in range(47)]
    # '-' (0x2d) sorts before '/' (0x2f) before '0'; upper case before lower case.
    keys += ["a-dash", "a0zero", "B-upper"]
    assert len(keys) == 1100
    return sorted(keys, key=str.encode)


ALL_KEYS = build_keys()


def expected_entries(prefix: str = "", delimiter: str = "") -> list[tuple[str, str]]:
    """What a listing returns, in order: ("key", name) and ("prefix", common prefix) entries."""
    entries: list[tuple[str, str]] = []
    seen_prefixes = set()
    for key in ALL_KEYS:
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix) :]
        if delimiter and delimiter in rest:
            common = prefix + rest[: rest.index(delimiter) + len(delimiter)]
            if common not in seen_prefixes:
                seen_prefixes.add(common)
                entries.append(("prefix", common))
        else:
            entries.append(("key", key))
    return entries


def page_entries(page: dict) -> list[tuple[str, str]]:
    """The keys and common prefixes of one listing page, merged in S3 order."""
    merged = [("key", item["Key"]) for item in page.get("Contents", [])]
    merged += [("prefix", item["Prefix"]) for item in page.get("CommonPrefixes", [])]
    return sorted(merged, key=lambda entry: entry[1].encode())


@pytest.fixture(scope="module")
def listing_bucket(s3):
    name = unique_bucket_name("listing")
    s3.create_bucket(Bucket=name)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=name, Key=key, Body=key.encode()), ALL_KEYS))
    yield name
    empty_and_delete_bucket(s3, name)


def test_list_v2_returns_1000_then_the_rest(s3, listing_bucket):
    first = s3.list_objects_v2(Bucket=listing_bucket)
    assert first["KeyCount"] == 1000
    assert first["MaxKeys"] == 1000
    assert first["IsTruncated"] is True
    token = first["NextContinuationToken"]
    second = s3.list_objects_v2(Bucket=listing_bucket, ContinuationToken=token)
    assert second["ContinuationToken"] == token
    assert second["KeyCount"] == 100
    assert second["IsTruncated"] is False
    assert "NextContinuationToken" not in second
    keys = [item["Key"] for item in first["Contents"] + second["Contents"]]
    assert keys == ALL_KEYS
    sample = first["Contents"][0]
    assert sample["Size"] == len(sample["Key"].encode())
    assert sample["ETag"] == etag_of(sample["Key"].encode())
    assert sample["StorageClass"] == "STANDARD"


def test_list_v2_paginator_with_small_pages(s3, listing_bucket):
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=listing_bucket, MaxKeys=100))
    assert len(pages) == 11
    assert all(page["KeyCount"] == len(page.get("Contents", [])) <= 100 for page in pages)
    assert [item["Key"] for page in pages for item in page.get("Contents", [])] == ALL_KEYS


def test_list_v2_delimiter_at_root(s3, listing_bucket):
    page = s3.list_objects_v2(Bucket=listing_bucket, Delimiter="/")
    assert page["IsTruncated"] is False
    assert [entry["Prefix"] for entry in page["CommonPrefixes"]] == ["a/", "b/", "z/"]
    keys = [item["Key"] for item in page["Contents"]]
    assert keys == ["B-upper", "a-dash", "a0zero"] + [f"c{index:04d}" for index in range(250)]
    assert page["KeyCount"] == 256
    assert page_entries(page) == expected_entries(delimiter="/")


@pytest.mark.parametrize("max_keys", [1, 3, 7])
def test_list_v2_delimiter_pagination_counts_prefixes(s3, listing_bucket, max_keys):
    paginator = s3.get_paginator("list_objects_v2")
    seen: list[tuple[str, str]] = []
    for page in paginator.paginate(Bucket=listing_bucket, Delimiter="/", MaxKeys=max_keys):
        entries = page_entries(page)
        assert len(entries) <= max_keys
        assert page["KeyCount"] == len(entries)
        seen += entries
    assert seen == expected_entries(delimiter="/")


@pytest.mark.parametrize(
    "prefix,delimiter",
    [("b/", "/"), ("z/", "/"), ("a/", ""), ("a", "/"), ("z/1", "/"), ("nothing-here", "/")],
)
def test_list_v2_prefix_and_delimiter(s3, listing_bucket, prefix, delimiter):
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=listing_bucket, Prefix=prefix, Delimiter=delimiter
    )
    seen = [entry for page in pages for entry in page_entries(page)]
    assert seen == expected_entries(prefix, delimiter)


def test_list_v2_start_after(s3, listing_bucket):
    page = s3.list_objects_v2(Bucket=listing_bucket, StartAfter="c0100")
    assert [item["Key"] for item in page["Contents"]] == [
        key for key in ALL_KEYS if key.encode() > b"c0100"
    ]
    page = s3.list_objects_v2(Bucket=listing_bucket, Prefix="a/", StartAfter="a/0450")
    assert [item["Key"] for item in page["Contents"]] == [
        f"a/{index:04d}" for index in range(451, 500)
    ]
    # StartAfter between keys, and past the end.
    page = s3.list_objects_v2(Bucket=listing_bucket, StartAfter="b/x/0299zzz")
    assert page["Contents"][0]["Key"] == "c0000"
    page = s3.list_objects_v2(Bucket=listing_bucket, StartAfter="zzz")
    assert page["KeyCount"] == 0 and "Contents" not in page


def test_list_v1_marker_without_delimiter(s3, listing_bucket):
    first = s3.list_objects(Bucket=listing_bucket, Prefix="a/", MaxKeys=100)
    assert first["IsTruncated"] is True
    assert [item["Key"] for item in first["Contents"]] == [f"a/{index:04d}" for index in range(100)]
    second = s3.list_objects(Bucket=listing_bucket, Prefix="a/", MaxKeys=100, Marker="a/0099")
    assert second["Marker"] == "a/0099"
    assert [item["Key"] for item in second["Contents"]] == [
        f"a/{index:04d}" for index in range(100, 200)
    ]
    whole = s3.list_objects(Bucket=listing_bucket)
    assert whole["IsTruncated"] is True
    assert [item["Key"] for item in whole["Contents"]] == ALL_KEYS[:1000]


def test_list_v1_next_marker_with_delimiter(s3, listing_bucket):
    first = s3.list_objects(Bucket=listing_bucket, Delimiter="/", MaxKeys=3)
    assert page_entries(first) == [("key", "B-upper"), ("key", "a-dash"), ("prefix", "a/")]
    assert first["IsTruncated"] is True
    assert first["NextMarker"] == "a/"
    second = s3.list_objects(Bucket=listing_bucket, Delimiter="/", MaxKeys=3, Marker="a/")
    assert page_entries(second) == [("key", "a0zero"), ("prefix", "b/"), ("key", "c0000")]
    assert second["NextMarker"] == "c0000"

    seen = []
    for page in s3.get_paginator("list_objects").paginate(
        Bucket=listing_bucket, Delimiter="/", PaginationConfig={"PageSize": 5}
    ):
        seen += page_entries(page)
    assert seen == expected_entries(delimiter="/")


URL_KEYS = ["with space/a b.txt", "plus+dir/x+y", "ünï/ç", "per%cent/%41", "plain", "tab\there"]


def test_encoding_type_url(s3, raw_s3, bucket):
    for key in URL_KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=b"u")
    expected = sorted(URL_KEYS, key=str.encode)

    # Left to itself botocore requests encoding-type=url and decodes the answer.
    auto = s3.list_objects_v2(Bucket=bucket)
    assert [item["Key"] for item in auto["Contents"]] == expected
    auto_v1 = s3.list_objects(Bucket=bucket, Delimiter="/")
    assert [item["Prefix"] for item in auto_v1["CommonPrefixes"]] == sorted(
        ["with space/", "plus+dir/", "ünï/", "per%cent/"], key=str.encode
    )
    assert [item["Key"] for item in auto_v1["Contents"]] == ["plain", "tab\there"]

    # Asked explicitly, botocore hands back what the server sent: check the encoding itself.
    for listing in (
        s3.list_objects_v2(Bucket=bucket, EncodingType="url"),
        s3.list_objects(Bucket=bucket, EncodingType="url"),
    ):
        assert listing["EncodingType"] == "url"
        raw_keys = [item["Key"] for item in listing["Contents"]]
        assert [urllib.parse.unquote_plus(raw) for raw in raw_keys] == expected
        for raw in raw_keys:
            assert raw.isascii() and " " not in raw and "\t" not in raw, raw
        lowered = [raw.lower() for raw in raw_keys]
        assert "per%25cent/%2541" in lowered
        assert "plus%2bdir/x%2by" in lowered

    raw = raw_s3.send("GET", f"/{bucket}?list-type=2&encoding-type=url&delimiter=%2F")
    assert raw.status == 200, raw.body
    assert b"<EncodingType>url</EncodingType>" in raw.body
    assert b"<Prefix>per%25cent/</Prefix>" in raw.body


def test_list_object_versions_of_unversioned_bucket(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k1", Body=b"one")
    s3.put_object(Bucket=bucket, Key="k1", Body=b"one again")
    s3.put_object(Bucket=bucket, Key="k2", Body=b"two")
    listing = s3.list_object_versions(Bucket=bucket)
    versions = [
        (entry["Key"], entry["VersionId"], entry["IsLatest"]) for entry in listing["Versions"]
    ]
    assert versions == [("k1", "null", True), ("k2", "null", True)]
    assert listing["Versions"][0]["ETag"] == etag_of(b"one again")
    assert listing["Versions"][0]["Size"] == len(b"one again")
    assert listing.get("DeleteMarkers", []) == []
    assert listing["IsTruncated"] is False
