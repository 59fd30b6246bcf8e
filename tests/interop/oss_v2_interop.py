#!/usr/bin/env python3
"""Drives the local OSS server with alibabacloud-oss-v2 (Alibaba's Python SDK v2).

Usage: oss_v2_interop.py --sign v4|v1   (V4 is the SDK's default). The SDK switches to path-style
addressing by itself because the endpoint host is an IP address; the endpoint carries its `http://`
scheme, so no TLS is attempted. CRC-64 checks on upload and download are the SDK's defaults (on).
"""

import argparse
import datetime
import os
import re
import tempfile

import alibabacloud_oss_v2 as oss

from interop_common import (
    MIN_PART_SIZE,
    MSG_ENTITY_TOO_SMALL,
    MSG_FILE_ALREADY_EXISTS,
    MSG_INVALID_AK,
    MSG_INVALID_DIGEST,
    MSG_INVALID_PART,
    MSG_INVALID_TOKEN,
    MSG_INVALID_PART_ORDER,
    MSG_NO_SUCH_KEY,
    MSG_NO_SUCH_UPLOAD,
    MSG_PART_NUMBER,
    MSG_SIGNATURE,
    TRICKY_KEY_TAIL,
    Config,
    Runner,
    ServiceFailure,
    check_error_envelope,
    crc64,
    expect,
    expect_eq,
    expect_service_error,
    http_get,
    md5_base64,
    md5_hex_upper,
    parse_error_xml,
    payload,
    tamper_signature,
)


def decode(exc):
    """The v2 SDK wraps service errors (OperationError, UploadError); unwrap to the ServiceError."""
    err = exc
    for _ in range(5):
        if isinstance(err, oss.exceptions.ServiceError):
            return ServiceFailure(
                err.status_code, err.code, err.message, err.error_fileds, err.headers, exc
            )
        unwrap = getattr(err, "unwrap", None)
        if unwrap is None:
            return None
        err = unwrap()
    return None


def make_client(cfg, sign, access_key_id=None, access_key_secret=None, security_token=None):
    config = oss.config.load_default()
    config.credentials_provider = oss.credentials.StaticCredentialsProvider(
        access_key_id or cfg.access_key_id,
        access_key_secret or cfg.access_key_secret,
        security_token,
    )
    config.region = cfg.region
    config.endpoint = cfg.endpoint
    config.disable_ssl = True
    config.signature_version = sign
    return oss.Client(config)


class NonSeekableReader:
    """A stream of unknown size: only read(n), no len/seek/tell, like a pipe."""

    def __init__(self, data, chunk=65536):
        self._data = data
        self._pos = 0
        self._chunk = chunk

    def read(self, n=-1):
        if n is None or n < 0:
            n = len(self._data) - self._pos
        n = min(n, self._chunk * 64)
        out = self._data[self._pos:self._pos + n]
        self._pos += len(out)
        return out


def parts_of(client, bucket, key, upload_id, datas, numbers=None):
    parts = []
    for number in numbers or range(1, len(datas) + 1):
        result = client.upload_part(
            oss.UploadPartRequest(
                bucket=bucket, key=key, upload_id=upload_id, part_number=number,
                body=datas[number - 1],
            )
        )
        parts.append(oss.UploadPart(part_number=number, etag=result.etag))
    return parts


class V2Interop:
    def __init__(self, cfg, sign):
        self.cfg = cfg
        self.sign = sign
        self.client = make_client(cfg, sign)
        self.b = cfg.bucket
        self.small_key = cfg.key("small/" + TRICKY_KEY_TAIL)
        self.small_data = b"hello oss\n" * 41
        self.mp = {}

    def initiate(self, key, **kwargs):
        return self.client.initiate_multipart_upload(
            oss.InitiateMultipartUploadRequest(bucket=self.b, key=key, **kwargs)
        ).upload_id

    def abort(self, key, upload_id):
        return self.client.abort_multipart_upload(
            oss.AbortMultipartUploadRequest(bucket=self.b, key=key, upload_id=upload_id)
        )

    def complete(self, key, upload_id, parts, **kwargs):
        return self.client.complete_multipart_upload(
            oss.CompleteMultipartUploadRequest(
                bucket=self.b, key=key, upload_id=upload_id,
                complete_multipart_upload=oss.CompleteMultipartUpload(parts=parts), **kwargs,
            )
        )

    def get_bytes(self, key, **kwargs):
        return self.client.get_object(oss.GetObjectRequest(bucket=self.b, key=key, **kwargs))

    # ---- small objects -------------------------------------------------------------------

    def put_small(self):
        result = self.client.put_object(
            oss.PutObjectRequest(
                bucket=self.b, key=self.small_key, body=self.small_data,
                content_type="text/plain",
                metadata={"author": "alice", "project": "Interop Test"},
            )
        )
        expect_eq(result.status_code, 200, "PutObject status")
        expect_eq(result.etag, f'"{md5_hex_upper(self.small_data)}"', "PutObject ETag")
        expect_eq(result.hash_crc64, str(crc64(self.small_data)), "PutObject CRC")
        expect_eq(result.content_md5, md5_base64(self.small_data), "PutObject Content-MD5")
        expect(result.request_id, "PutObject has no x-oss-request-id")

    def get_small(self):
        result = self.get_bytes(self.small_key)
        expect_eq(result.body.read(), self.small_data, "GetObject body")
        expect_eq(result.metadata.get("author"), "alice", "metadata author")
        expect_eq(result.metadata.get("project"), "Interop Test", "metadata project")
        expect_eq(result.content_type, "text/plain", "Content-Type")
        expect_eq(result.hash_crc64, str(crc64(self.small_data)), "GetObject CRC")
        expect_eq(result.object_type, "Normal", "x-oss-object-type")

    def head_small(self):
        result = self.client.head_object(oss.HeadObjectRequest(bucket=self.b, key=self.small_key))
        expect_eq(result.content_length, len(self.small_data), "HeadObject Content-Length")
        expect_eq(result.etag, f'"{md5_hex_upper(self.small_data)}"', "HeadObject ETag")
        expect_eq(result.hash_crc64, str(crc64(self.small_data)), "HeadObject CRC")
        expect_eq(result.object_type, "Normal", "x-oss-object-type")
        expect_eq(result.metadata.get("author"), "alice", "HeadObject metadata")
        expect(result.last_modified is not None, "HeadObject has no Last-Modified")
        # Not client.is_object_exist(): it sends GetObjectMeta (HEAD ?objectMeta), which the
        # local server does not implement (tests/interop/FINDINGS.md).

    def get_to_file(self):
        # get_object_to_file is the v2 call that checks the download's CRC-64.
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "out")
            self.client.get_object_to_file(
                oss.GetObjectRequest(bucket=self.b, key=self.small_key), path
            )
            with open(path, "rb") as f:
                expect_eq(f.read(), self.small_data, "get_object_to_file contents")

    # ---- the full multipart upload ---------------------------------------------------------

    def mp_initiate(self):
        key = self.cfg.key("multipart/" + TRICKY_KEY_TAIL)
        result = self.client.initiate_multipart_upload(
            oss.InitiateMultipartUploadRequest(
                bucket=self.b, key=key, content_type="application/x-interop",
                metadata={"stage": "mp"},
            )
        )
        expect(result.upload_id, "no UploadId")
        # encoding-type=url is always sent by this SDK; the key must round-trip.
        expect_eq(result.key, key, "InitiateMultipartUpload Key (url-decoded)")
        expect_eq(result.bucket, self.b, "InitiateMultipartUpload Bucket")
        sizes = [300000, MIN_PART_SIZE, 250000, 777]
        datas = [payload(f"v2-part-{n}", s) for n, s in enumerate(sizes, start=1)]
        self.mp.update(key=key, upload_id=result.upload_id, datas=datas, parts=[])

    def mp_upload_parts(self):
        mp = self.mp
        for number in (4, 2, 3, 1):
            data = mp["datas"][number - 1]
            # The SDK compares the response CRC with its own and raises on a mismatch.
            result = self.client.upload_part(
                oss.UploadPartRequest(
                    bucket=self.b, key=mp["key"], upload_id=mp["upload_id"],
                    part_number=number, body=data,
                )
            )
            expect_eq(result.etag, f'"{md5_hex_upper(data)}"', f"part {number} ETag")
            expect_eq(result.hash_crc64, str(crc64(data)), f"part {number} CRC")
            mp["parts"].append(oss.UploadPart(part_number=number, etag=result.etag))
        mp["parts"].sort(key=lambda p: p.part_number)

    def mp_list_parts(self):
        mp = self.mp
        result = self.client.list_parts(
            oss.ListPartsRequest(bucket=self.b, key=mp["key"], upload_id=mp["upload_id"])
        )
        expect_eq(result.key, mp["key"], "ListParts Key (url-decoded)")
        expect_eq(result.upload_id, mp["upload_id"], "ListParts UploadId")
        expect_eq(result.is_truncated, False, "ListParts IsTruncated")
        got = [(p.part_number, p.etag, p.size, p.hash_crc64) for p in result.parts]
        want = [
            (n, f'"{md5_hex_upper(d)}"', len(d), str(crc64(d)))
            for n, d in enumerate(mp["datas"], start=1)
        ]
        expect_eq(got, want, "ListParts (number, etag, size, HashCrc64ecma)")
        # Paging: max-parts=2 then the marker.
        page = self.client.list_parts(
            oss.ListPartsRequest(bucket=self.b, key=mp["key"], upload_id=mp["upload_id"],
                                 max_parts=2)
        )
        expect_eq([p.part_number for p in page.parts], [1, 2], "ListParts page 1")
        expect_eq(page.is_truncated, True, "ListParts page 1 IsTruncated")
        expect_eq(str(page.next_part_number_marker), "2", "ListParts NextPartNumberMarker")
        rest = self.client.list_parts(
            oss.ListPartsRequest(bucket=self.b, key=mp["key"], upload_id=mp["upload_id"],
                                 part_number_marker=2)
        )
        expect_eq([p.part_number for p in rest.parts], [3, 4], "ListParts after marker 2")

    def mp_list_uploads(self):
        mp = self.mp
        result = self.client.list_multipart_uploads(
            oss.ListMultipartUploadsRequest(bucket=self.b, prefix=self.cfg.key("multipart/"))
        )
        found = [(u.key, u.upload_id) for u in result.uploads or []]
        expect(
            (mp["key"], mp["upload_id"]) in found,
            f"ListMultipartUploads lacks {(mp['key'], mp['upload_id'])!r}: {found!r}",
        )
        expect_eq(result.prefix, self.cfg.key("multipart/"), "ListMultipartUploads Prefix")
        for upload in result.uploads:
            expect(upload.initiated is not None, "upload without Initiated")

    def list_uploads_paging(self):
        # Three uploads (two on one key), listed two per page by the SDK's paginator:
        # NextKeyMarker / NextUploadIdMarker must lead to the rest, in key then upload order.
        prefix = self.cfg.key("paging/")
        started = [
            (prefix + "a", self.initiate(prefix + "a")),
            (prefix + "b", self.initiate(prefix + "b")),
            (prefix + "b", self.initiate(prefix + "b")),
        ]
        paginator = self.client.list_multipart_uploads_paginator(limit=2)
        pages = [
            [(u.key, u.upload_id) for u in page.uploads or []]
            for page in paginator.iter_page(
                oss.ListMultipartUploadsRequest(bucket=self.b, prefix=prefix)
            )
        ]
        expect_eq([len(p) for p in pages], [2, 1], "uploads per page")
        listed = [u for page in pages for u in page]
        expect_eq(sorted(listed), sorted(started), "uploads listed across pages")
        expect_eq(
            [k for k, _ in listed], sorted(k for k, _ in listed), "uploads listed in key order"
        )
        for key, upload_id in started:
            self.abort(key, upload_id)

    def mp_complete(self):
        mp = self.mp
        result = self.complete(mp["key"], mp["upload_id"], mp["parts"])
        whole = b"".join(mp["datas"])
        expect_eq(result.hash_crc64, str(crc64(whole)), "Complete CRC")
        expect_eq(result.key, mp["key"], "Complete Key (url-decoded)")
        expect(
            re.fullmatch(r'"[0-9A-F]{32}-4"', result.etag or ""),
            f"multipart ETag should be quoted 32 upper hex + '-4', got {result.etag!r}",
        )

    def mp_read_back(self):
        mp = self.mp
        whole = b"".join(mp["datas"])
        head = self.client.head_object(oss.HeadObjectRequest(bucket=self.b, key=mp["key"]))
        expect_eq(head.content_length, len(whole), "multipart Content-Length")
        expect_eq(head.object_type, "Multipart", "multipart x-oss-object-type")
        expect_eq(head.hash_crc64, str(crc64(whole)), "multipart HEAD CRC")
        expect_eq(head.metadata.get("stage"), "mp", "metadata from Initiate")
        expect_eq(head.content_type, "application/x-interop", "Content-Type from Initiate")
        body = self.get_bytes(mp["key"]).body.read()
        expect(body == whole, f"multipart GET body differs ({len(body)} vs {len(whole)} bytes)")
        ranged = self.get_bytes(mp["key"], range_header="bytes=299990-300009")
        expect_eq(ranged.status_code, 206, "ranged GET status")
        expect_eq(ranged.body.read(), whole[299990:300010], "ranged GET across a boundary")
        expect_eq(
            ranged.content_range, f"bytes 299990-300009/{len(whole)}", "ranged Content-Range"
        )
        expect_eq(ranged.hash_crc64, str(crc64(whole)), "ranged GET carries the object CRC")

    def complete_all(self):
        key = self.cfg.key("multipart/complete-all")
        upload_id = self.initiate(key)
        datas = [payload("ca-1", MIN_PART_SIZE), payload("ca-2", 99)]
        parts_of(self.client, self.b, key, upload_id, datas)
        # x-oss-complete-all: yes and no body: the server lists the parts itself.
        self.client.complete_multipart_upload(
            oss.CompleteMultipartUploadRequest(
                bucket=self.b, key=key, upload_id=upload_id, complete_all="yes"
            )
        )
        expect_eq(self.get_bytes(key).body.read(), b"".join(datas), "complete-all body")

    def uploader_from_stream(self):
        data = payload("v2-uploader-stream", 3 * MIN_PART_SIZE + 4321)
        key = self.cfg.key("uploader/stream " + TRICKY_KEY_TAIL)
        uploader = self.client.uploader(part_size=MIN_PART_SIZE, parallel_num=3)
        result = uploader.upload_from(
            oss.PutObjectRequest(bucket=self.b, key=key, metadata={"via": "upload_from"}),
            NonSeekableReader(data),
        )
        expect(result.upload_id, "upload_from of an unknown-size stream should use multipart")
        # upload_from does not fold part CRCs itself (oss-protocol.md §11); compare here.
        expect_eq(result.hash_crc64, str(crc64(data)), "upload_from result CRC")
        head = self.client.head_object(oss.HeadObjectRequest(bucket=self.b, key=key))
        expect_eq(head.content_length, len(data), "upload_from size")
        expect_eq(head.object_type, "Multipart", "upload_from object type")
        expect_eq(head.metadata.get("via"), "upload_from", "upload_from metadata")
        expect(self.get_bytes(key).body.read() == data, "upload_from body differs")

    def uploader_from_file(self):
        # upload_file does verify the combined CRC against the Complete response.
        data = payload("v2-uploader-file", 4 * MIN_PART_SIZE + 10)
        key = self.cfg.key("uploader/file.bin")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "source.bin")
            with open(path, "wb") as f:
                f.write(data)
            uploader = self.client.uploader(part_size=MIN_PART_SIZE, parallel_num=2)
            result = uploader.upload_file(oss.PutObjectRequest(bucket=self.b, key=key), path)
        expect(result.upload_id, "upload_file should have used multipart")
        expect_eq(result.hash_crc64, str(crc64(data)), "upload_file CRC")

    # ---- abort and NoSuchUpload ------------------------------------------------------------

    def abort_then_no_such_upload(self):
        key = self.cfg.key("aborted/" + TRICKY_KEY_TAIL)
        upload_id = self.initiate(key)
        parts = parts_of(self.client, self.b, key, upload_id, [payload("ab", MIN_PART_SIZE)])
        result = self.abort(key, upload_id)
        expect_eq(result.status_code, 204, "Abort status")
        listed = self.client.list_multipart_uploads(
            oss.ListMultipartUploadsRequest(bucket=self.b, prefix=self.cfg.key("aborted/"))
        ).uploads or []
        expect(upload_id not in [u.upload_id for u in listed], "aborted upload still listed")
        fields = {"UploadId": upload_id}
        failure = expect_service_error(
            lambda: parts_of(self.client, self.b, key, upload_id, [b"x"]),
            decode, 404, "NoSuchUpload", MSG_NO_SUCH_UPLOAD, fields, "UploadPart after abort",
        )
        check_error_envelope(failure.headers, failure.fields, "NoSuchUpload")
        expect_service_error(
            lambda: self.client.list_parts(
                oss.ListPartsRequest(bucket=self.b, key=key, upload_id=upload_id)
            ),
            decode, 404, "NoSuchUpload", MSG_NO_SUCH_UPLOAD, fields, "ListParts after abort",
        )
        expect_service_error(
            lambda: self.complete(key, upload_id, parts),
            decode, 404, "NoSuchUpload", MSG_NO_SUCH_UPLOAD, fields, "Complete after abort",
        )
        expect_service_error(
            lambda: self.abort(key, upload_id),
            decode, 404, "NoSuchUpload", MSG_NO_SUCH_UPLOAD, fields, "second Abort",
        )

    # ---- errors a real OSS returns -------------------------------------------------------

    def get_missing_key(self):
        key = self.cfg.key("missing/" + TRICKY_KEY_TAIL)
        failure = expect_service_error(
            lambda: self.get_bytes(key), decode, 404, "NoSuchKey", MSG_NO_SUCH_KEY,
            {"Key": key}, "GetObject of a missing key",
        )
        check_error_envelope(failure.headers, failure.fields, "NoSuchKey")
        expect(failure.fields.get("HostId"), "error body without HostId")

    def head_missing_key(self):
        key = self.cfg.key("missing/" + TRICKY_KEY_TAIL)
        failure = expect_service_error(
            lambda: self.client.head_object(oss.HeadObjectRequest(bucket=self.b, key=key)),
            decode, 404, "NoSuchKey", MSG_NO_SUCH_KEY, {"Key": key},
            "HeadObject of a missing key (decoded from x-oss-err)",
        )
        expect(failure.headers.get("x-oss-err"), "HEAD 404 without x-oss-err")

    def invalid_part(self):
        key = self.cfg.key("errors/invalid-part")
        upload_id = self.initiate(key)
        parts = parts_of(self.client, self.b, key, upload_id,
                         [payload("ip", MIN_PART_SIZE), b"tail"])
        wrong = [oss.UploadPart(part_number=1, etag='"' + "F" * 32 + '"'), parts[1]]
        expect_service_error(
            lambda: self.complete(key, upload_id, wrong),
            decode, 400, "InvalidPart", MSG_INVALID_PART,
            {"PartNumber": "1", "UploadId": upload_id}, "Complete with a wrong ETag",
        )
        self.abort(key, upload_id)

    def invalid_part_order(self):
        key = self.cfg.key("errors/part-order")
        upload_id = self.initiate(key)
        parts = parts_of(self.client, self.b, key, upload_id,
                         [payload("po-1", MIN_PART_SIZE), payload("po-2", MIN_PART_SIZE)])
        # This SDK sends the parts in the order given.
        expect_service_error(
            lambda: self.complete(key, upload_id, [parts[1], parts[0]]),
            decode, 400, "InvalidPartOrder", MSG_INVALID_PART_ORDER, None,
            "Complete with parts 2,1",
        )
        self.abort(key, upload_id)

    def entity_too_small(self):
        key = self.cfg.key("errors/too-small")
        upload_id = self.initiate(key)
        parts = parts_of(self.client, self.b, key, upload_id,
                         [b"tiny first part", payload("ts", MIN_PART_SIZE), b"last"])
        expect_service_error(
            lambda: self.complete(key, upload_id, parts),
            decode, 400, "EntityTooSmall", MSG_ENTITY_TOO_SMALL, None,
            "Complete with a 15-byte first part",
        )
        self.abort(key, upload_id)

    def part_number_10001(self):
        key = self.cfg.key("errors/part-number")
        upload_id = self.initiate(key)
        expect_service_error(
            lambda: self.client.upload_part(
                oss.UploadPartRequest(bucket=self.b, key=key, upload_id=upload_id,
                                      part_number=10001, body=b"data")
            ),
            decode, 400, "InvalidArgument", MSG_PART_NUMBER,
            {"ArgumentName": "PartNumber", "ArgumentValue": "10001"}, "UploadPart 10001",
        )
        self.abort(key, upload_id)

    def forbid_overwrite(self):
        key = self.cfg.key("errors/forbid-overwrite")
        self.client.put_object(oss.PutObjectRequest(bucket=self.b, key=key, body=b"original"))
        failure = expect_service_error(
            lambda: self.client.put_object(
                oss.PutObjectRequest(bucket=self.b, key=key, body=b"new", forbid_overwrite=True)
            ),
            decode, 409, "FileAlreadyExists", MSG_FILE_ALREADY_EXISTS, None,
            "PutObject with forbid-overwrite",
        )
        check_error_envelope(failure.headers, failure.fields, "FileAlreadyExists")
        upload_id = self.initiate(key)
        parts = parts_of(self.client, self.b, key, upload_id, [b"new"])
        expect_service_error(
            lambda: self.complete(key, upload_id, parts, forbid_overwrite=True),
            decode, 409, "FileAlreadyExists", MSG_FILE_ALREADY_EXISTS, None,
            "Complete with forbid-overwrite",
        )
        expect_eq(self.get_bytes(key).body.read(), b"original", "object after refusals")
        self.abort(key, upload_id)
        # The v2 Uploader sends forbid-overwrite on Initiate and Complete; it must fail too.
        uploader = self.client.uploader(part_size=MIN_PART_SIZE, parallel_num=1)
        expect_service_error(
            lambda: uploader.upload_from(
                oss.PutObjectRequest(bucket=self.b, key=key, forbid_overwrite=True),
                NonSeekableReader(b"new"),
            ),
            decode, 409, "FileAlreadyExists", MSG_FILE_ALREADY_EXISTS, None,
            "Uploader.upload_from with forbid-overwrite",
        )
        expect_eq(self.get_bytes(key).body.read(), b"original", "object after Uploader refusal")

    def invalid_digest(self):
        key = self.cfg.key("errors/bad-md5")
        wrong = md5_base64(b"another body")
        expect_service_error(
            lambda: self.client.put_object(
                oss.PutObjectRequest(bucket=self.b, key=key, body=b"body", content_md5=wrong)
            ),
            decode, 400, "InvalidDigest", MSG_INVALID_DIGEST, {"Content-MD5": wrong},
            "PutObject with a wrong Content-MD5",
        )
        upload_id = self.initiate(key)
        expect_service_error(
            lambda: self.client.upload_part(
                oss.UploadPartRequest(bucket=self.b, key=key, upload_id=upload_id,
                                      part_number=1, body=b"body", content_md5=wrong)
            ),
            decode, 400, "InvalidDigest", MSG_INVALID_DIGEST, {"Content-MD5": wrong},
            "UploadPart with a wrong Content-MD5",
        )
        self.abort(key, upload_id)

    def wrong_secret(self):
        client = make_client(self.cfg, self.sign, access_key_secret="not-the-secret")
        fields = {"OSSAccessKeyId": self.cfg.access_key_id}
        failure = expect_service_error(
            lambda: client.put_object(
                oss.PutObjectRequest(bucket=self.b, key=self.small_key, body=b"x")
            ),
            decode, 403, "SignatureDoesNotMatch", MSG_SIGNATURE, fields,
            "PutObject with a wrong secret",
        )
        check_error_envelope(failure.headers, failure.fields, "SignatureDoesNotMatch")
        expect_service_error(
            lambda: client.head_object(oss.HeadObjectRequest(bucket=self.b, key=self.small_key)),
            decode, 403, "SignatureDoesNotMatch", MSG_SIGNATURE, fields,
            "HeadObject with a wrong secret (x-oss-err)",
        )
        expect_service_error(
            lambda: client.list_multipart_uploads(
                oss.ListMultipartUploadsRequest(bucket=self.b)
            ),
            decode, 403, "SignatureDoesNotMatch", MSG_SIGNATURE, fields,
            "ListMultipartUploads with a wrong secret",
        )

    def unknown_access_key(self):
        client = make_client(self.cfg, self.sign, access_key_id="LTAIunknownKeyId0000")
        expect_service_error(
            lambda: client.get_object(oss.GetObjectRequest(bucket=self.b, key=self.small_key)),
            decode, 403, "InvalidAccessKeyId", MSG_INVALID_AK,
            {"OSSAccessKeyId": "LTAIunknownKeyId0000"}, "GetObject with an unknown key id",
        )

    # ---- STS (temporary) credentials ---------------------------------------------------------

    def sts_client(self, token=None):
        return make_client(
            self.cfg, self.sign, self.cfg.sts_access_key_id, self.cfg.sts_access_key_secret,
            token or self.cfg.sts_security_token,
        )

    def sts_round_trip(self):
        # V4 signs x-oss-security-token; this SDK's V1 signer sends an unsigned `security-token`
        # header instead (oss-protocol.md §3.4), which the server tolerates.
        client = self.sts_client()
        key = self.cfg.key("sts/" + TRICKY_KEY_TAIL)
        data = payload("v2-sts", 5000)
        client.put_object(oss.PutObjectRequest(bucket=self.b, key=key, body=data))
        got = client.get_object(oss.GetObjectRequest(bucket=self.b, key=key)).body.read()
        expect_eq(got, data, "GetObject with STS credentials")
        uploader = client.uploader(part_size=MIN_PART_SIZE, parallel_num=2)
        mp_data = payload("v2-sts-mp", 2 * MIN_PART_SIZE + 7)
        uploader.upload_from(
            oss.PutObjectRequest(bucket=self.b, key=key), NonSeekableReader(mp_data)
        )
        got = client.get_object(oss.GetObjectRequest(bucket=self.b, key=key)).body.read()
        expect(got == mp_data, "Uploader with STS credentials: body differs")
        url = client.presign(
            oss.GetObjectRequest(bucket=self.b, key=key), expires=datetime.timedelta(minutes=5)
        ).url
        status, _, body = http_get(url)
        expect_eq(status, 200, f"presigned STS GET {url}")
        expect(body == mp_data, "presigned STS GET body differs")

    def sts_wrong_token(self):
        client = self.sts_client(token="CAIS-not-the-token")
        expect_service_error(
            lambda: client.put_object(
                oss.PutObjectRequest(bucket=self.b, key=self.cfg.key("sts/wrong"), body=b"x")
            ),
            decode, 403, "InvalidSecurityToken", MSG_INVALID_TOKEN, None,
            "PutObject with a wrong security token",
        )

    # ---- presigned URLs ---------------------------------------------------------------------

    def presigned_get(self):
        result = self.client.presign(
            oss.GetObjectRequest(bucket=self.b, key=self.small_key),
            expires=datetime.timedelta(minutes=5),
        )
        marker = "x-oss-signature=" if self.sign == "v4" else "Signature="
        expect(marker in result.url, f"{self.sign} presigned URL lacks {marker}: {result.url}")
        status, headers, body = http_get(result.url)
        expect_eq(status, 200, f"GET {result.url}")
        expect_eq(body, self.small_data, "presigned GET body")
        expect_eq(headers.get("x-oss-hash-crc64ecma"), str(crc64(self.small_data)), "CRC")

    def presigned_get_tampered(self):
        result = self.client.presign(
            oss.GetObjectRequest(bucket=self.b, key=self.small_key),
            expires=datetime.timedelta(minutes=5),
        )
        tampered = tamper_signature(result.url)
        status, headers, body = http_get(tampered)
        fields = parse_error_xml(body)
        expect_eq((status, fields.get("Code")), (403, "SignatureDoesNotMatch"), "tampered URL")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sign", choices=["v1", "v4"], required=True)
    args = parser.parse_args()
    cfg = Config()
    suite = V2Interop(cfg, args.sign)
    version = getattr(oss, "__version__", None) or oss._version.VERSION
    run = Runner(f"alibabacloud-oss-v2 {version} sign={args.sign} endpoint={cfg.endpoint}")
    c = run.check
    c("PutObject: tricky key, metadata, CRC", suite.put_small)
    c("GetObject: body, metadata, CRC", suite.get_small)
    c("HeadObject: size, ETag, type, CRC, metadata", suite.head_small)
    c("get_object_to_file with the download CRC check", suite.get_to_file)
    c("multipart: Initiate (encoding-type=url)", suite.mp_initiate)
    c("multipart: UploadPart x4 out of order, CRC checked", suite.mp_upload_parts)
    c("multipart: ListParts incl. paging", suite.mp_list_parts)
    c("multipart: ListMultipartUploads", suite.mp_list_uploads)
    c("ListMultipartUploads paging (paginator, limit 2)", suite.list_uploads_paging)
    c("multipart: Complete", suite.mp_complete)
    c("multipart: HEAD/GET/range of the result", suite.mp_read_back)
    c("multipart: Complete with x-oss-complete-all", suite.complete_all)
    c("Uploader.upload_from a non-seekable stream", suite.uploader_from_stream)
    c("Uploader.upload_file (combined CRC checked)", suite.uploader_from_file)
    c("Abort then NoSuchUpload everywhere", suite.abort_then_no_such_upload)
    c("NoSuchKey on GET", suite.get_missing_key)
    c("NoSuchKey on HEAD (x-oss-err)", suite.head_missing_key)
    c("InvalidPart at Complete", suite.invalid_part)
    c("InvalidPartOrder at Complete", suite.invalid_part_order)
    c("EntityTooSmall at Complete", suite.entity_too_small)
    c("InvalidArgument for part number 10001", suite.part_number_10001)
    c("FileAlreadyExists on Put, Complete and the Uploader", suite.forbid_overwrite)
    c("InvalidDigest on Put and UploadPart", suite.invalid_digest)
    c("SignatureDoesNotMatch with a wrong secret", suite.wrong_secret)
    c("InvalidAccessKeyId with an unknown key id", suite.unknown_access_key)
    c("STS credentials: Put/Get/Uploader/presigned GET", suite.sts_round_trip)
    c("InvalidSecurityToken with a wrong STS token", suite.sts_wrong_token)
    c(f"presigned GET URL ({args.sign}) via urllib", suite.presigned_get)
    c(f"tampered presigned URL ({args.sign}) refused", suite.presigned_get_tampered)
    run.finish()


if __name__ == "__main__":
    main()
