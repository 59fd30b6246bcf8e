#!/usr/bin/env python3
"""Drives the local OSS server with oss2 (Alibaba's Python SDK v1), CRC checks on.

Usage: oss2_interop.py --auth v1|v4   (server coordinates come from the environment, see
interop_common.py). `--auth v4` uses oss2.ProviderAuthV4 with the region.
"""

import argparse
import os
import re
import tempfile
import time

import oss2
import oss2.credentials
import oss2.models

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
    MSG_TOO_SKEWED,
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
    """oss2 raises ServerError subclasses for every response it decoded as an OSS error."""
    if isinstance(exc, oss2.exceptions.ServerError):
        return ServiceFailure(exc.status, exc.code, exc.message, exc.details, exc.headers, exc)
    return None


def make_bucket(cfg, auth, access_key_id=None, access_key_secret=None, security_token=None):
    access_key_id = access_key_id or cfg.access_key_id
    access_key_secret = access_key_secret or cfg.access_key_secret
    if auth == "v1":
        if security_token:
            credentials = oss2.StsAuth(access_key_id, access_key_secret, security_token)
        else:
            credentials = oss2.Auth(access_key_id, access_key_secret)
        return oss2.Bucket(credentials, cfg.endpoint, cfg.bucket, enable_crc=True)
    provider = oss2.credentials.StaticCredentialsProvider(
        access_key_id, access_key_secret, security_token or ""
    )
    return oss2.Bucket(
        oss2.ProviderAuthV4(provider),
        cfg.endpoint,
        cfg.bucket,
        enable_crc=True,
        region=cfg.region,
    )


class Oss2Interop:
    def __init__(self, cfg, auth):
        self.cfg = cfg
        self.auth = auth
        self.bucket = make_bucket(cfg, auth)
        self.small_key = cfg.key("small/" + TRICKY_KEY_TAIL)
        self.small_data = b"hello oss\n" * 37
        self.mp = {}  # state shared by the multipart checks

    # ---- small objects -------------------------------------------------------------------

    def put_small(self):
        result = self.bucket.put_object(
            self.small_key,
            self.small_data,
            headers={
                "Content-Type": "text/plain",
                "x-oss-meta-author": "alice",
                "x-oss-meta-Project": "Interop Test",
            },
        )
        expect_eq(result.status, 200, "PutObject status")
        expect_eq(result.etag, md5_hex_upper(self.small_data), "PutObject ETag (quotes stripped)")
        expect_eq(result.crc, crc64(self.small_data), "PutObject x-oss-hash-crc64ecma")
        expect_eq(
            result.headers.get("Content-MD5"), md5_base64(self.small_data), "PutObject Content-MD5"
        )
        expect(result.request_id, "PutObject has no x-oss-request-id")

    def get_small(self):
        result = self.bucket.get_object(self.small_key)
        body = result.read()  # with enable_crc, oss2 compares the body's CRC with the header
        expect_eq(body, self.small_data, "GetObject body")
        expect_eq(result.headers.get("x-oss-meta-author"), "alice", "x-oss-meta-author")
        expect_eq(result.headers.get("x-oss-meta-project"), "Interop Test", "x-oss-meta-project")
        expect_eq(result.headers.get("Content-Type"), "text/plain", "Content-Type")
        expect_eq(result.server_crc, crc64(self.small_data), "GetObject x-oss-hash-crc64ecma")
        expect_eq(result.client_crc, result.server_crc, "GetObject CRC (client vs server)")

    def head_small(self):
        result = self.bucket.head_object(self.small_key)
        expect_eq(result.content_length, len(self.small_data), "HeadObject Content-Length")
        expect_eq(result.etag, md5_hex_upper(self.small_data), "HeadObject ETag")
        expect_eq(result.object_type, "Normal", "x-oss-object-type")
        expect_eq(result.server_crc, crc64(self.small_data), "HeadObject x-oss-hash-crc64ecma")
        expect_eq(result.headers.get("x-oss-meta-author"), "alice", "x-oss-meta-author")
        expect(result.headers.get("Last-Modified"), "HeadObject has no Last-Modified")

    def put_with_good_content_md5(self):
        data = payload("good-md5", 4096)
        key = self.cfg.key("small/good md5+.bin")
        self.bucket.put_object(key, data, headers={"Content-MD5": md5_base64(data)})
        expect_eq(self.bucket.get_object(key).read(), data, "body after PutObject with MD5")

    def put_and_get_empty(self):
        key = self.cfg.key("small/empty")
        result = self.bucket.put_object(key, b"")
        expect_eq(result.etag, "D41D8CD98F00B204E9800998ECF8427E", "ETag of the empty object")
        expect_eq(result.crc, 0, "CRC-64 of the empty object")
        expect_eq(self.bucket.get_object(key).read(), b"", "empty body")
        expect_eq(self.bucket.head_object(key).content_length, 0, "empty Content-Length")

    # ---- the full multipart upload ---------------------------------------------------------

    def mp_initiate(self):
        key = self.cfg.key("multipart/" + TRICKY_KEY_TAIL)
        result = self.bucket.init_multipart_upload(
            key, headers={"Content-Type": "application/x-interop", "x-oss-meta-stage": "mp"}
        )
        expect(result.upload_id, "InitiateMultipartUpload returned no UploadId")
        # 256 KiB, exactly 100 KiB (the smallest allowed non-last part), then a short tail.
        sizes = [262144, MIN_PART_SIZE, 30001]
        self.mp.update(key=key, upload_id=result.upload_id, parts=[], datas=[])
        for number, size in enumerate(sizes, start=1):
            self.mp["datas"].append(payload(f"oss2-part-{number}", size))

    def mp_upload_parts(self):
        mp = self.mp
        # Upload out of order: OSS accepts parts in any order.
        for number in (2, 1, 3):
            data = mp["datas"][number - 1]
            result = self.bucket.upload_part(mp["key"], mp["upload_id"], number, data)
            expect_eq(result.etag, md5_hex_upper(data), f"UploadPart {number} ETag")
            # oss2 already raised if the CRC header disagreed with the bytes it sent.
            expect_eq(result.crc, crc64(data), f"UploadPart {number} x-oss-hash-crc64ecma")
            mp["parts"].append(
                oss2.models.PartInfo(
                    number, result.etag, size=len(data), part_crc=result.crc
                )
            )

    def mp_list_parts(self):
        mp = self.mp
        result = self.bucket.list_parts(mp["key"], mp["upload_id"])
        expect_eq(result.is_truncated, False, "ListParts IsTruncated")
        got = [(p.part_number, p.etag, p.size) for p in result.parts]
        want = [(n, md5_hex_upper(d), len(d)) for n, d in enumerate(mp["datas"], start=1)]
        expect_eq(got, want, "ListParts (number, etag, size)")
        for part in result.parts:
            expect(part.last_modified, f"ListParts part {part.part_number} has no LastModified")

    def mp_list_uploads(self):
        mp = self.mp
        result = self.bucket.list_multipart_uploads(prefix=self.cfg.key("multipart/"))
        found = [(u.key, u.upload_id) for u in result.upload_list]
        expect(
            (mp["key"], mp["upload_id"]) in found,
            f"ListMultipartUploads lacks {(mp['key'], mp['upload_id'])!r}: {found!r}",
        )
        for upload in result.upload_list:
            expect(upload.initiation_date, "ListMultipartUploads: upload without Initiated")

    def mp_complete(self):
        mp = self.mp
        # With part_crc and size on every PartInfo, oss2 folds the part CRCs and compares the
        # result with the CRC header of the Complete response.
        result = self.bucket.complete_multipart_upload(mp["key"], mp["upload_id"], mp["parts"])
        whole = b"".join(mp["datas"])
        expect_eq(result.crc, crc64(whole), "CompleteMultipartUpload x-oss-hash-crc64ecma")
        expect(
            re.fullmatch(r"[0-9A-F]{32}-3", result.etag or ""),
            f"multipart ETag should be 32 upper hex + '-3', got {result.etag!r}",
        )
        mp["etag"] = result.etag

    def mp_read_back(self):
        mp = self.mp
        whole = b"".join(mp["datas"])
        head = self.bucket.head_object(mp["key"])
        expect_eq(head.content_length, len(whole), "multipart Content-Length")
        expect_eq(head.object_type, "Multipart", "multipart x-oss-object-type")
        expect_eq(head.server_crc, crc64(whole), "multipart HEAD CRC")
        expect_eq(head.etag, mp.get("etag"), "multipart HEAD ETag vs Complete ETag")
        expect_eq(head.headers.get("x-oss-meta-stage"), "mp", "metadata given at Initiate")
        expect_eq(head.content_type, "application/x-interop", "Content-Type given at Initiate")
        body = self.bucket.get_object(mp["key"]).read()
        expect_eq(len(body), len(whole), "multipart GET length")
        expect(body == whole, "multipart GET body differs from the uploaded parts")
        # A ranged read across the part 1 / part 2 boundary.
        ranged = self.bucket.get_object(mp["key"], byte_range=(262100, 262199)).read()
        expect_eq(ranged, whole[262100:262200], "ranged GET across a part boundary")

    def mp_gone_from_listing(self):
        mp = self.mp
        result = self.bucket.list_multipart_uploads(prefix=self.cfg.key("multipart/"))
        ids = [u.upload_id for u in result.upload_list]
        expect(mp["upload_id"] not in ids, "completed upload still in ListMultipartUploads")

    def part_with_good_content_md5(self):
        key = self.cfg.key("multipart/md5-ok")
        upload_id = self.bucket.init_multipart_upload(key).upload_id
        data = payload("md5-part", 2048)
        result = self.bucket.upload_part(
            key, upload_id, 1, data, headers={"Content-MD5": md5_base64(data)}
        )
        expect_eq(result.etag, md5_hex_upper(data), "UploadPart ETag with Content-MD5")
        self.bucket.complete_multipart_upload(
            key, upload_id, [oss2.models.PartInfo(1, result.etag, size=len(data), part_crc=result.crc)]
        )
        expect_eq(self.bucket.get_object(key).read(), data, "single-part multipart body")

    def resumable_upload(self):
        # oss2's high-level uploader: multipart above the threshold, parts of 100 KiB.
        data = payload("oss2-resumable", 3 * MIN_PART_SIZE + 12345)
        key = self.cfg.key("resumable/" + TRICKY_KEY_TAIL)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "source.bin")
            with open(path, "wb") as f:
                f.write(data)
            oss2.resumable_upload(
                self.bucket,
                key,
                path,
                store=oss2.ResumableStore(root=tmp),
                multipart_threshold=MIN_PART_SIZE,
                part_size=MIN_PART_SIZE,
                num_threads=2,
            )
        head = self.bucket.head_object(key)
        expect_eq(head.object_type, "Multipart", "resumable_upload object type")
        expect_eq(head.server_crc, crc64(data), "resumable_upload CRC")
        expect(self.bucket.get_object(key).read() == data, "resumable_upload body differs")

    # ---- abort and NoSuchUpload ------------------------------------------------------------

    def abort_then_no_such_upload(self):
        key = self.cfg.key("aborted/" + TRICKY_KEY_TAIL)
        upload_id = self.bucket.init_multipart_upload(key).upload_id
        data = payload("abort", MIN_PART_SIZE)
        etag = self.bucket.upload_part(key, upload_id, 1, data).etag
        result = self.bucket.abort_multipart_upload(key, upload_id)
        expect_eq(result.status, 204, "AbortMultipartUpload status")
        listed = self.bucket.list_multipart_uploads(prefix=self.cfg.key("aborted/")).upload_list
        expect(upload_id not in [u.upload_id for u in listed], "aborted upload is still listed")
        fields = {"UploadId": upload_id}
        failure = expect_service_error(
            lambda: self.bucket.upload_part(key, upload_id, 2, b"x"),
            decode, 404, "NoSuchUpload", MSG_NO_SUCH_UPLOAD, fields, "UploadPart after abort",
        )
        check_error_envelope(failure.headers, failure.fields, "NoSuchUpload")
        expect_service_error(
            lambda: self.bucket.list_parts(key, upload_id),
            decode, 404, "NoSuchUpload", MSG_NO_SUCH_UPLOAD, fields, "ListParts after abort",
        )
        expect_service_error(
            lambda: self.bucket.complete_multipart_upload(
                key, upload_id, [oss2.models.PartInfo(1, etag)]
            ),
            decode, 404, "NoSuchUpload", MSG_NO_SUCH_UPLOAD, fields, "Complete after abort",
        )
        expect_service_error(
            lambda: self.bucket.abort_multipart_upload(key, upload_id),
            decode, 404, "NoSuchUpload", MSG_NO_SUCH_UPLOAD, fields, "second Abort",
        )

    def unknown_upload_id(self):
        key = self.cfg.key("aborted/never")
        expect_service_error(
            lambda: self.bucket.upload_part(key, "0004B9894A22E5B1888A1E29F8236E2D", 1, b"x"),
            decode, 404, "NoSuchUpload", MSG_NO_SUCH_UPLOAD,
            {"UploadId": "0004B9894A22E5B1888A1E29F8236E2D"}, "UploadPart to an unknown id",
        )

    # ---- errors a real OSS returns -------------------------------------------------------

    def get_missing_key(self):
        key = self.cfg.key("missing/" + TRICKY_KEY_TAIL)
        failure = expect_service_error(
            lambda: self.bucket.get_object(key).read(),
            decode, 404, "NoSuchKey", MSG_NO_SUCH_KEY, {"Key": key}, "GetObject of a missing key",
        )
        check_error_envelope(failure.headers, failure.fields, "NoSuchKey")
        expect_eq(
            failure.headers.get("Content-Type"), "application/xml", "error Content-Type"
        )

    def head_missing_key(self):
        key = self.cfg.key("missing/" + TRICKY_KEY_TAIL)
        # HEAD has no body: the code must come from the base64 XML in x-oss-err.
        failure = expect_service_error(
            lambda: self.bucket.head_object(key),
            decode, 404, "NoSuchKey", MSG_NO_SUCH_KEY, {"Key": key}, "HeadObject of a missing key",
        )
        expect(failure.headers.get("x-oss-err"), "HEAD 404 without an x-oss-err header")
        check_error_envelope(failure.headers, failure.fields, "HEAD NoSuchKey")

    def invalid_part_wrong_etag(self):
        key = self.cfg.key("errors/invalid-part")
        upload_id = self.bucket.init_multipart_upload(key).upload_id
        self.bucket.upload_part(key, upload_id, 1, payload("ip", MIN_PART_SIZE))
        self.bucket.upload_part(key, upload_id, 2, b"tail")
        real_2 = md5_hex_upper(b"tail")
        expect_service_error(
            lambda: self.bucket.complete_multipart_upload(
                key, upload_id,
                [oss2.models.PartInfo(1, "0" * 32), oss2.models.PartInfo(2, real_2)],
            ),
            decode, 400, "InvalidPart", MSG_INVALID_PART,
            {"PartNumber": "1", "UploadId": upload_id}, "Complete with a wrong ETag",
        )
        # A part that was never uploaded is InvalidPart too.
        expect_service_error(
            lambda: self.bucket.complete_multipart_upload(
                key, upload_id,
                [oss2.models.PartInfo(2, real_2), oss2.models.PartInfo(3, real_2)],
            ),
            decode, 400, "InvalidPart", MSG_INVALID_PART, {"PartNumber": "3"},
            "Complete listing a part never uploaded",
        )
        # Failed Completes leave the upload usable.
        self.bucket.abort_multipart_upload(key, upload_id)

    def invalid_part_order(self):
        key = self.cfg.key("errors/part-order")
        upload_id = self.bucket.init_multipart_upload(key).upload_id
        data_1 = payload("po-1", MIN_PART_SIZE)
        data_2 = payload("po-2", MIN_PART_SIZE)
        etag_1 = self.bucket.upload_part(key, upload_id, 1, data_1).etag
        etag_2 = self.bucket.upload_part(key, upload_id, 2, data_2).etag
        # oss2.complete_multipart_upload sorts the parts itself, so send the XML through oss2's
        # own signed-request path (Bucket.__do_object) to put them out of order.
        body = (
            "<CompleteMultipartUpload>"
            f'<Part><PartNumber>2</PartNumber><ETag>"{etag_2}"</ETag></Part>'
            f'<Part><PartNumber>1</PartNumber><ETag>"{etag_1}"</ETag></Part>'
            "</CompleteMultipartUpload>"
        )
        do_object = getattr(self.bucket, "_Bucket__do_object")
        expect_service_error(
            lambda: do_object("POST", key, params={"uploadId": upload_id}, data=body),
            decode, 400, "InvalidPartOrder", MSG_INVALID_PART_ORDER, None,
            "Complete with parts 2,1",
        )
        self.bucket.abort_multipart_upload(key, upload_id)

    def entity_too_small(self):
        key = self.cfg.key("errors/too-small")
        upload_id = self.bucket.init_multipart_upload(key).upload_id
        parts = []
        for number, data in ((1, payload("small-1", MIN_PART_SIZE - 1)), (2, b"last part")):
            result = self.bucket.upload_part(key, upload_id, number, data)
            parts.append(oss2.models.PartInfo(number, result.etag))
        expect_service_error(
            lambda: self.bucket.complete_multipart_upload(key, upload_id, parts),
            decode, 400, "EntityTooSmall", MSG_ENTITY_TOO_SMALL, None,
            "Complete with a 102399-byte first part",
        )
        self.bucket.abort_multipart_upload(key, upload_id)

    def part_number_out_of_range(self):
        key = self.cfg.key("errors/part-number")
        upload_id = self.bucket.init_multipart_upload(key).upload_id
        for number in (10001, 0):
            expect_service_error(
                lambda: self.bucket.upload_part(key, upload_id, number, b"data"),
                decode, 400, "InvalidArgument", MSG_PART_NUMBER,
                {"ArgumentName": "PartNumber", "ArgumentValue": str(number)},
                f"UploadPart number {number}",
            )
        # The upper bound itself is valid.
        self.bucket.upload_part(key, upload_id, 10000, b"the last possible part")
        self.bucket.abort_multipart_upload(key, upload_id)

    def forbid_overwrite(self):
        key = self.cfg.key("errors/forbid-overwrite")
        original = b"original contents"
        forbid = {"x-oss-forbid-overwrite": "true"}
        # Allowed when the key is new.
        self.bucket.put_object(key, original, headers=forbid)
        failure = expect_service_error(
            lambda: self.bucket.put_object(key, b"replacement", headers=forbid),
            decode, 409, "FileAlreadyExists", MSG_FILE_ALREADY_EXISTS, None,
            "PutObject with forbid-overwrite on an existing key",
        )
        check_error_envelope(failure.headers, failure.fields, "FileAlreadyExists")
        expect_eq(self.bucket.get_object(key).read(), original, "object after a refused Put")
        # Complete checks it as well (the upload was initiated without the header).
        upload_id = self.bucket.init_multipart_upload(key).upload_id
        result = self.bucket.upload_part(key, upload_id, 1, b"replacement")
        expect_service_error(
            lambda: self.bucket.complete_multipart_upload(
                key, upload_id, [oss2.models.PartInfo(1, result.etag)], headers=forbid
            ),
            decode, 409, "FileAlreadyExists", MSG_FILE_ALREADY_EXISTS, None,
            "Complete with forbid-overwrite on an existing key",
        )
        expect_eq(self.bucket.get_object(key).read(), original, "object after a refused Complete")
        self.bucket.abort_multipart_upload(key, upload_id)
        # Without the header an overwrite is fine.
        self.bucket.put_object(key, b"replacement", headers={"x-oss-forbid-overwrite": "false"})
        expect_eq(self.bucket.get_object(key).read(), b"replacement", "object after overwrite")

    def forbid_overwrite_at_initiate(self):
        key = self.cfg.key("errors/forbid-overwrite-initiate")
        self.bucket.put_object(key, b"exists")
        expect_service_error(
            lambda: self.bucket.init_multipart_upload(
                key, headers={"x-oss-forbid-overwrite": "true"}
            ),
            decode, 409, "FileAlreadyExists", MSG_FILE_ALREADY_EXISTS, None,
            "Initiate with forbid-overwrite on an existing key",
        )

    def invalid_digest(self):
        key = self.cfg.key("errors/bad-md5")
        data = b"the body that was sent"
        wrong = md5_base64(b"some other body")
        expect_service_error(
            lambda: self.bucket.put_object(key, data, headers={"Content-MD5": wrong}),
            decode, 400, "InvalidDigest", MSG_INVALID_DIGEST, {"Content-MD5": wrong},
            "PutObject with a wrong Content-MD5",
        )
        expect_service_error(
            lambda: self.bucket.get_object(key),
            decode, 404, "NoSuchKey", MSG_NO_SUCH_KEY, None, "GetObject after a refused Put",
        )
        expect_service_error(
            lambda: self.bucket.put_object(key, data, headers={"Content-MD5": "bm90IGFuIG1kNQ=="}),
            decode, 400, "InvalidDigest", MSG_INVALID_DIGEST, None,
            "PutObject with a malformed Content-MD5 (decodes to 10 bytes)",
        )
        upload_id = self.bucket.init_multipart_upload(key).upload_id
        expect_service_error(
            lambda: self.bucket.upload_part(key, upload_id, 1, data, headers={"Content-MD5": wrong}),
            decode, 400, "InvalidDigest", MSG_INVALID_DIGEST, {"Content-MD5": wrong},
            "UploadPart with a wrong Content-MD5",
        )
        self.bucket.abort_multipart_upload(key, upload_id)

    def wrong_secret(self):
        bucket = make_bucket(self.cfg, self.auth, access_key_secret="not-the-secret")
        fields = {"OSSAccessKeyId": self.cfg.access_key_id}
        failure = expect_service_error(
            lambda: bucket.put_object(self.cfg.key("errors/wrong-secret"), b"data"),
            decode, 403, "SignatureDoesNotMatch", MSG_SIGNATURE, fields,
            "PutObject signed with a wrong secret",
        )
        check_error_envelope(failure.headers, failure.fields, "SignatureDoesNotMatch")
        expect_service_error(
            lambda: bucket.get_object(self.small_key),
            decode, 403, "SignatureDoesNotMatch", MSG_SIGNATURE, fields,
            "GetObject signed with a wrong secret",
        )
        expect_service_error(
            lambda: bucket.head_object(self.small_key),
            decode, 403, "SignatureDoesNotMatch", MSG_SIGNATURE, fields,
            "HeadObject signed with a wrong secret (from x-oss-err)",
        )
        expect_service_error(
            lambda: bucket.init_multipart_upload(self.cfg.key("errors/wrong-secret")),
            decode, 403, "SignatureDoesNotMatch", MSG_SIGNATURE, fields,
            "Initiate signed with a wrong secret",
        )

    def unknown_access_key(self):
        bucket = make_bucket(self.cfg, self.auth, access_key_id="LTAIunknownKeyId0000")
        expect_service_error(
            lambda: bucket.put_object(self.cfg.key("errors/unknown-ak"), b"data"),
            decode, 403, "InvalidAccessKeyId", MSG_INVALID_AK,
            {"OSSAccessKeyId": "LTAIunknownKeyId0000"}, "PutObject with an unknown key id",
        )
        expect_service_error(
            lambda: bucket.head_object(self.small_key),
            decode, 403, "InvalidAccessKeyId", MSG_INVALID_AK, None,
            "HeadObject with an unknown key id (from x-oss-err)",
        )

    def clock_skew(self):
        # oss2's V1 signer stamps `Date` with oss2.utils.http_date(); make it 20 minutes slow.
        real_http_date = oss2.utils.http_date
        oss2.utils.http_date = lambda timeval=None: real_http_date(time.time() - 20 * 60)
        try:
            expect_service_error(
                lambda: self.bucket.get_object(self.small_key),
                decode, 403, "RequestTimeTooSkewed", MSG_TOO_SKEWED, None,
                "GetObject dated 20 minutes ago",
            )
        finally:
            oss2.utils.http_date = real_http_date
        # 10 minutes is within OSS's 15-minute window.
        oss2.utils.http_date = lambda timeval=None: real_http_date(time.time() - 10 * 60)
        try:
            expect_eq(self.bucket.get_object(self.small_key).read(), self.small_data, "10 min")
        finally:
            oss2.utils.http_date = real_http_date

    # ---- STS (temporary) credentials ---------------------------------------------------------

    def sts_bucket(self, token=None):
        return make_bucket(
            self.cfg, self.auth, self.cfg.sts_access_key_id, self.cfg.sts_access_key_secret,
            token or self.cfg.sts_security_token,
        )

    def sts_round_trip(self):
        # The token travels as x-oss-security-token and is part of the signature (V1 and V4).
        bucket = self.sts_bucket()
        key = self.cfg.key("sts/" + TRICKY_KEY_TAIL)
        data = payload("sts", 5000)
        bucket.put_object(key, data)
        expect_eq(bucket.get_object(key).read(), data, "GetObject with STS credentials")
        upload_id = bucket.init_multipart_upload(key).upload_id
        part = bucket.upload_part(key, upload_id, 1, data)
        bucket.complete_multipart_upload(key, upload_id, [oss2.models.PartInfo(1, part.etag)])
        expect_eq(bucket.head_object(key).object_type, "Multipart", "STS multipart object")
        # A presigned URL carries the token as the security-token / x-oss-security-token param.
        url = bucket.sign_url("GET", key, 300)
        status, _, body = http_get(url)
        expect_eq((status, body), (200, data), f"presigned STS GET {url}")

    def sts_wrong_token(self):
        bucket = self.sts_bucket(token="CAIS-not-the-token")
        expect_service_error(
            lambda: bucket.put_object(self.cfg.key("sts/wrong-token"), b"x"),
            decode, 403, "InvalidSecurityToken", MSG_INVALID_TOKEN, None,
            "PutObject with a wrong security token",
        )

    # ---- presigned URLs ---------------------------------------------------------------------

    def presigned_get(self):
        url = self.bucket.sign_url("GET", self.small_key, 300)
        marker = "x-oss-signature=" if self.auth == "v4" else "Signature="
        expect(marker in url, f"{self.auth} presigned URL lacks {marker}: {url}")
        status, headers, body = http_get(url)
        expect_eq(status, 200, f"GET {url}")
        expect_eq(body, self.small_data, "presigned GET body")
        expect_eq(headers.get("x-oss-meta-author"), "alice", "presigned GET metadata")

    def presigned_get_tampered(self):
        url = self.bucket.sign_url("GET", self.small_key, 300)
        tampered = tamper_signature(url)
        status, headers, body = http_get(tampered)
        fields = parse_error_xml(body)
        expect_eq((status, fields.get("Code")), (403, "SignatureDoesNotMatch"), "tampered URL")
        check_error_envelope(headers, fields, "tampered presigned URL")

    def presigned_get_expired(self):
        # V1 presigned URLs carry an absolute Expires; one in the past is refused.
        url = self.bucket.sign_url("GET", self.small_key, -60)
        status, _, body = http_get(url)
        fields = parse_error_xml(body)
        expect_eq((status, fields.get("Code")), (403, "AccessDenied"), "expired presigned URL")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--auth", choices=["v1", "v4"], required=True)
    args = parser.parse_args()
    cfg = Config()
    suite = Oss2Interop(cfg, args.auth)
    run = Runner(f"oss2 {oss2.__version__} auth={args.auth} endpoint={cfg.endpoint}")
    c = run.check
    c("PutObject: tricky key, metadata, CRC", suite.put_small)
    c("GetObject: body, metadata, CRC", suite.get_small)
    c("HeadObject: size, ETag, type, CRC, metadata", suite.head_small)
    c("PutObject with a correct Content-MD5", suite.put_with_good_content_md5)
    c("PutObject/GetObject of an empty object", suite.put_and_get_empty)
    c("multipart: Initiate", suite.mp_initiate)
    c("multipart: UploadPart x3 out of order, CRC checked", suite.mp_upload_parts)
    c("multipart: ListParts", suite.mp_list_parts)
    c("multipart: ListMultipartUploads", suite.mp_list_uploads)
    c("multipart: Complete, combined CRC checked", suite.mp_complete)
    c("multipart: HEAD/GET/range of the result", suite.mp_read_back)
    c("multipart: completed upload leaves the listing", suite.mp_gone_from_listing)
    c("multipart: UploadPart with a correct Content-MD5", suite.part_with_good_content_md5)
    c("oss2.resumable_upload (4 parts, 2 threads)", suite.resumable_upload)
    c("Abort then NoSuchUpload everywhere", suite.abort_then_no_such_upload)
    c("NoSuchUpload for an unknown upload id", suite.unknown_upload_id)
    c("NoSuchKey on GET", suite.get_missing_key)
    c("NoSuchKey on HEAD (x-oss-err)", suite.head_missing_key)
    c("InvalidPart at Complete", suite.invalid_part_wrong_etag)
    c("InvalidPartOrder at Complete", suite.invalid_part_order)
    c("EntityTooSmall at Complete", suite.entity_too_small)
    c("InvalidArgument for part numbers 10001 and 0", suite.part_number_out_of_range)
    c("FileAlreadyExists on Put and Complete", suite.forbid_overwrite)
    c("FileAlreadyExists on Initiate", suite.forbid_overwrite_at_initiate)
    c("InvalidDigest on Put and UploadPart", suite.invalid_digest)
    c("SignatureDoesNotMatch with a wrong secret", suite.wrong_secret)
    c("InvalidAccessKeyId with an unknown key id", suite.unknown_access_key)
    if args.auth == "v1":
        c("RequestTimeTooSkewed for a Date 20 minutes off", suite.clock_skew)
    c("STS credentials: Put/Get/multipart/presigned GET", suite.sts_round_trip)
    c("InvalidSecurityToken with a wrong STS token", suite.sts_wrong_token)
    c(f"presigned GET URL ({args.auth}) via urllib", suite.presigned_get)
    c(f"tampered presigned URL ({args.auth}) refused", suite.presigned_get_tampered)
    if args.auth == "v1":
        c("expired presigned URL (v1) refused", suite.presigned_get_expired)
    run.finish()


if __name__ == "__main__":
    main()
