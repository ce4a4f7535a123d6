"""boto3: multipart uploads, through s3transfer and through the low-level calls."""

from __future__ import annotations

import os

from boto3.s3.transfer import TransferConfig

from s3_helpers import MIB, etag_of, expect_s3_error, multipart_etag, response_status, sha256_file

PART = 5 * MIB


def test_upload_file_multipart_and_download(s3, bucket, random_file, tmp_path):
    source = random_file(20 * MIB)
    config = TransferConfig(
        multipart_threshold=8 * MIB, multipart_chunksize=5 * MIB, max_concurrency=4
    )
    s3.upload_file(str(source), bucket, "big/20MiB.bin", Config=config)

    head = s3.head_object(Bucket=bucket, Key="big/20MiB.bin")
    assert head["ContentLength"] == 20 * MIB
    data = source.read_bytes()
    assert head["ETag"] == multipart_etag(
        [data[offset : offset + PART] for offset in range(0, len(data), PART)]
    )

    target = tmp_path / "downloaded.bin"
    s3.download_file(bucket, "big/20MiB.bin", str(target), Config=config)
    assert sha256_file(target) == sha256_file(source)


def test_low_level_multipart_with_copy_part(s3, bucket):
    copy_source_data = os.urandom(6 * MIB)
    s3.put_object(Bucket=bucket, Key="copy-source", Body=copy_source_data)
    upload = s3.create_multipart_upload(
        Bucket=bucket,
        Key="assembled",
        ContentType="application/x-mp",
        Metadata={"kind": "multipart"},
    )
    upload_id = upload["UploadId"]
    assert upload["Key"] == "assembled" and upload["Bucket"] == bucket

    part1 = os.urandom(PART)
    etag1 = s3.upload_part(
        Bucket=bucket, Key="assembled", UploadId=upload_id, PartNumber=1, Body=part1
    )["ETag"]
    assert etag1 == etag_of(part1)

    copied = s3.upload_part_copy(
        Bucket=bucket,
        Key="assembled",
        UploadId=upload_id,
        PartNumber=2,
        CopySource={"Bucket": bucket, "Key": "copy-source"},
        CopySourceRange=f"bytes={MIB}-{MIB + PART - 1}",
    )
    part2 = copy_source_data[MIB : MIB + PART]
    assert copied["CopyPartResult"]["ETag"] == etag_of(part2)

    part3 = b"small last part"
    etag3 = s3.upload_part(
        Bucket=bucket, Key="assembled", UploadId=upload_id, PartNumber=3, Body=part3
    )["ETag"]

    parts = s3.list_parts(Bucket=bucket, Key="assembled", UploadId=upload_id)
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts["Parts"]] == [
        (1, etag1, PART),
        (2, etag_of(part2), PART),
        (3, etag3, len(part3)),
    ]
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("assembled", upload_id)]

    completion = {
        "Parts": [
            {"PartNumber": 1, "ETag": etag1},
            {"PartNumber": 2, "ETag": etag_of(part2)},
            {"PartNumber": 3, "ETag": etag3},
        ]
    }
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="assembled", UploadId=upload_id, MultipartUpload=completion
    )
    expected_etag = multipart_etag([part1, part2, part3])
    assert done["ETag"] == expected_etag
    assert done["Key"] == "assembled" and done["Bucket"] == bucket

    got = s3.get_object(Bucket=bucket, Key="assembled")
    assert got["ETag"] == expected_etag
    assert got["ContentType"] == "application/x-mp"
    assert got["Metadata"] == {"kind": "multipart"}
    assert got["ContentLength"] == 2 * PART + len(part3)
    assert got["Body"].read() == part1 + part2 + part3

    # Completing again (a client retry after a lost answer) answers the same result.
    again = s3.complete_multipart_upload(
        Bucket=bucket, Key="assembled", UploadId=upload_id, MultipartUpload=completion
    )
    assert response_status(again) == 200
    assert again["ETag"] == expected_etag
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

    ranged = s3.get_object(Bucket=bucket, Key="assembled", Range=f"bytes={PART - 3}-{PART + 2}")
    assert ranged["Body"].read() == (part1 + part2)[PART - 3 : PART + 3]


def test_abort_multipart_upload(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="aborted")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="aborted", UploadId=upload_id, PartNumber=1, Body=b"x" * 1024)
    aborted = s3.abort_multipart_upload(Bucket=bucket, Key="aborted", UploadId=upload_id)
    assert response_status(aborted) == 204
    with expect_s3_error("NoSuchUpload", 404):
        s3.list_parts(Bucket=bucket, Key="aborted", UploadId=upload_id)
    with expect_s3_error("NoSuchUpload", 404):
        s3.upload_part(Bucket=bucket, Key="aborted", UploadId=upload_id, PartNumber=2, Body=b"y")
    with expect_s3_error("NoSuchUpload", 404):
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="aborted",
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag_of(b"x" * 1024)}]},
        )
    with expect_s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="aborted")
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_unknown_upload_id(s3, bucket):
    with expect_s3_error("NoSuchUpload", 404):
        s3.upload_part(
            Bucket=bucket, Key="k", UploadId="no-such-upload-id", PartNumber=1, Body=b"x"
        )


def start_upload_with_parts(s3, bucket, key, sizes):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    etags = []
    for number, size in enumerate(sizes, start=1):
        body = os.urandom(size)
        etags.append(
            s3.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
            )["ETag"]
        )
    return upload_id, etags


def test_complete_with_too_small_part_is_entity_too_small(s3, bucket):
    upload_id, etags = start_upload_with_parts(s3, bucket, "small", [1024, 1024])
    parts = [{"PartNumber": 1, "ETag": etags[0]}, {"PartNumber": 2, "ETag": etags[1]}]
    with expect_s3_error("EntityTooSmall", 400):
        s3.complete_multipart_upload(
            Bucket=bucket, Key="small", UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    # The upload stays open after a failed completion.
    assert len(s3.list_parts(Bucket=bucket, Key="small", UploadId=upload_id)["Parts"]) == 2


def test_complete_with_wrong_etag_or_missing_part_is_invalid_part(s3, bucket):
    upload_id, etags = start_upload_with_parts(s3, bucket, "wrong", [PART, 1024])
    wrong_etag = [
        {"PartNumber": 1, "ETag": '"0123456789abcdef0123456789abcdef"'},
        {"PartNumber": 2, "ETag": etags[1]},
    ]
    with expect_s3_error("InvalidPart", 400):
        s3.complete_multipart_upload(
            Bucket=bucket, Key="wrong", UploadId=upload_id, MultipartUpload={"Parts": wrong_etag}
        )
    never_uploaded = [{"PartNumber": 1, "ETag": etags[0]}, {"PartNumber": 7, "ETag": etags[1]}]
    with expect_s3_error("InvalidPart", 400):
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="wrong",
            UploadId=upload_id,
            MultipartUpload={"Parts": never_uploaded},
        )


def test_complete_with_parts_out_of_order_is_invalid_part_order(s3, bucket):
    upload_id, etags = start_upload_with_parts(s3, bucket, "order", [PART, PART])
    reversed_parts = [{"PartNumber": 2, "ETag": etags[1]}, {"PartNumber": 1, "ETag": etags[0]}]
    with expect_s3_error("InvalidPartOrder", 400):
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="order",
            UploadId=upload_id,
            MultipartUpload={"Parts": reversed_parts},
        )


def test_completing_with_a_subset_of_parts(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="subset")["UploadId"]
    bodies = {number: os.urandom(PART) for number in (1, 2, 3)}
    etags = {
        number: s3.upload_part(
            Bucket=bucket, Key="subset", UploadId=upload_id, PartNumber=number, Body=body
        )["ETag"]
        for number, body in bodies.items()
    }
    # Part 2 is re-uploaded: the last upload of a part number wins.
    bodies[2] = os.urandom(PART)
    etags[2] = s3.upload_part(
        Bucket=bucket, Key="subset", UploadId=upload_id, PartNumber=2, Body=bodies[2]
    )["ETag"]
    chosen = [{"PartNumber": 1, "ETag": etags[1]}, {"PartNumber": 2, "ETag": etags[2]}]
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="subset", UploadId=upload_id, MultipartUpload={"Parts": chosen}
    )
    assert done["ETag"] == multipart_etag([bodies[1], bodies[2]])
    assert s3.get_object(Bucket=bucket, Key="subset")["Body"].read() == bodies[1] + bodies[2]
