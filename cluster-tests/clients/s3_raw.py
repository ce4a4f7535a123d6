"""Hand-built S3 requests, signed with botocore's own SigV4 signer.

For what boto3 will not send over plain HTTP: malformed bodies, raw UTF-8 header values,
`aws-chunked` bodies with trailing checksums (encoded by botocore's AwsChunkedWrapper) and
SigV4-signed chunks (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import io
import urllib.parse
from dataclasses import dataclass

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.httpchecksum import AwsChunkedWrapper, BaseChecksum

from s3_helpers import REGION

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass
class RawResponse:
    """Status, headers (lower-case names, raw bytes decoded as latin-1) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def header_bytes(self, name: str) -> bytes:
        """A header's value as the bytes the server sent."""
        return self.headers[name].encode("latin-1")

    def error_code(self) -> str:
        """The <Code> of an S3 XML error body, or "" if there is none."""
        text = self.body.decode("utf-8", errors="replace")
        start = text.find("<Code>")
        end = text.find("</Code>")
        return text[start + 6 : end] if start >= 0 and end > start else ""


class _FixedPayloadSigner(S3SigV4Auth):
    """S3's SigV4 signer with the x-amz-content-sha256 value chosen by the caller."""

    def __init__(self, credentials: Credentials, payload_hash: str | None):
        super().__init__(credentials, "s3", REGION)
        self._payload_hash = payload_hash

    def payload(self, request):
        if self._payload_hash is not None:
            return self._payload_hash
        return super().payload(request)


def quote_key(key: str) -> str:
    """Percent-encodes an object key for a path (keeps `/`)."""
    return urllib.parse.quote(key, safe="/~")


class RawS3:
    """Sends signed (or unsigned) requests to one endpoint with http.client."""

    def __init__(self, host: str, port: int, access_key: str, secret_key: str):
        self.host = host
        self.port = port
        self.credentials = Credentials(access_key, secret_key)

    def sign(
        self,
        method: str,
        path_and_query: str,
        headers: dict[str, str],
        body: bytes,
        payload_hash: str | None = None,
    ) -> tuple[dict[str, str], str]:
        """Signs a request; returns all headers to send and the `x-amz-date` timestamp."""
        url = f"http://{self.host}:{self.port}{path_and_query}"
        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        signer = _FixedPayloadSigner(self.credentials, payload_hash)
        signer.add_auth(request)
        return dict(request.headers.items()), request.context["timestamp"]

    def send(
        self,
        method: str,
        path_and_query: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        sign: bool = True,
        payload_hash: str | None = None,
    ) -> RawResponse:
        """Sends one request and reads the whole answer."""
        headers = dict(headers or {})
        if sign:
            headers, _ = self.sign(method, path_and_query, headers, body, payload_hash)
        return self.send_prepared(method, path_and_query, headers, body)

    def send_prepared(
        self, method: str, path_and_query: str, headers: dict[str, str], body: bytes
    ) -> RawResponse:
        """Sends a request whose headers are final (already signed, or deliberately not)."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            connection.putrequest(method, path_and_query, skip_accept_encoding=True)
            for name, value in headers.items():
                connection.putheader(name, value.encode("utf-8"))
            if body or method in ("PUT", "POST"):
                if not any(name.lower() == "content-length" for name in headers):
                    connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body if body else None)
            response = connection.getresponse()
            payload = response.read()
            received = {name.lower(): value for name, value in response.getheaders()}
            return RawResponse(response.status, received, payload)
        finally:
            connection.close()

    def put_aws_chunked_with_trailer(
        self,
        path: str,
        data: bytes,
        checksum_cls: type[BaseChecksum],
        checksum_header: str,
        extra_headers: dict[str, str] | None = None,
        chunk_size: int = 64 * 1024,
    ) -> RawResponse:
        """PUTs `data` as botocore does over TLS: unsigned aws-chunked body, checksum trailer."""
        wrapper = AwsChunkedWrapper(
            io.BytesIO(data),
            checksum_cls=checksum_cls,
            checksum_name=checksum_header,
            chunk_size=chunk_size,
        )
        encoded = wrapper.read()
        headers = {
            "Content-Encoding": "aws-chunked",
            "X-Amz-Trailer": checksum_header,
            "X-Amz-Decoded-Content-Length": str(len(data)),
            "Content-Length": str(len(encoded)),
        }
        for name, value in (extra_headers or {}).items():
            if name.lower() == "content-encoding":
                headers["Content-Encoding"] = f"{value},aws-chunked"
            else:
                headers[name] = value
        return self.send(
            "PUT", path, headers, encoded, payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER"
        )

    def put_signed_chunks(
        self, path: str, chunks: list[bytes], tamper_chunk: int | None = None
    ) -> RawResponse:
        """PUTs `chunks` as `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, each chunk signed.

        With `tamper_chunk`, that chunk's bytes are altered after signing (a man in the middle).
        """
        decoded_length = sum(len(chunk) for chunk in chunks)
        encoded_length = sum(_signed_chunk_length(len(chunk)) for chunk in chunks)
        encoded_length += _signed_chunk_length(0)
        headers = {
            "Content-Encoding": "aws-chunked",
            "X-Amz-Decoded-Content-Length": str(decoded_length),
            "Content-Length": str(encoded_length),
        }
        signed_headers, timestamp = self.sign(
            "PUT", path, headers, b"", payload_hash="STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
        )
        previous = signed_headers["Authorization"].rsplit("Signature=", 1)[1]
        key = _signing_key(self.credentials.secret_key, timestamp[:8])
        scope = f"{timestamp[:8]}/{REGION}/s3/aws4_request"
        body = bytearray()
        for index, chunk in enumerate([*chunks, b""]):
            string_to_sign = "\n".join(
                [
                    "AWS4-HMAC-SHA256-PAYLOAD",
                    timestamp,
                    scope,
                    previous,
                    EMPTY_SHA256,
                    hashlib.sha256(chunk).hexdigest(),
                ]
            )
            previous = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
            sent = chunk
            if tamper_chunk == index and chunk:
                sent = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
            body += f"{len(chunk):x};chunk-signature={previous}\r\n".encode()
            body += sent + b"\r\n"
        assert len(body) == encoded_length
        return self.send_prepared("PUT", path, signed_headers, bytes(body))


def _signed_chunk_length(size: int) -> int:
    return len(f"{size:x};chunk-signature=") + 64 + 2 + size + 2


def _signing_key(secret_key: str, date: str) -> bytes:
    key = ("AWS4" + secret_key).encode()
    for part in (date, REGION, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C (Castagnoli) in pure Python: botocore needs awscrt for it, the tests do not."""
    crc ^= 0xFFFFFFFF
    table = _CRC32C_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def crc32c_base64(data: bytes) -> str:
    """The x-amz-checksum-crc32c value of `data`."""
    return base64.b64encode(crc32c(data).to_bytes(4, "big")).decode()


class Crc32cChecksum(BaseChecksum):
    """A botocore checksum object computing CRC-32C, for AwsChunkedWrapper."""

    def __init__(self) -> None:
        self._crc = 0

    def update(self, chunk: bytes) -> None:
        self._crc = crc32c(chunk, self._crc)

    def digest(self) -> bytes:
        return self._crc.to_bytes(4, "big")


def content_md5(data: bytes) -> str:
    """The Content-MD5 header value of `data`."""
    return base64.b64encode(hashlib.md5(data).digest()).decode()
