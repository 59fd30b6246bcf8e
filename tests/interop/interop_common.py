"""Plumbing shared by the interop scripts that drive the local OSS server with official SDKs.

The cargo test `tests/interop.rs` starts the server and runs each script with these variables:

    OSSPIPE_INTEROP_ENDPOINT           http://127.0.0.1:PORT
    OSSPIPE_INTEROP_ACCESS_KEY_ID      the one access key id the server knows
    OSSPIPE_INTEROP_ACCESS_KEY_SECRET  its secret
    OSSPIPE_INTEROP_STS_ACCESS_KEY_ID, OSSPIPE_INTEROP_STS_ACCESS_KEY_SECRET,
    OSSPIPE_INTEROP_STS_SECURITY_TOKEN temporary credentials the server also accepts
    OSSPIPE_INTEROP_REGION             e.g. cn-hangzhou (V4 signing scope)
    OSSPIPE_INTEROP_BUCKET             the server's bucket
    OSSPIPE_INTEROP_PREFIX             a key prefix owned by this run, so runs can share a server

Every check runs even when an earlier one failed, so one run shows every server bug at once; the
script exits 1 if any check failed. Expected error codes, statuses and messages are the ones a real
OSS returns (shared/oss-errors.md); they are written out literally here, on purpose, so that a
server change cannot silently move the expectation with it.
"""

import base64
import hashlib
import os
import random
import re
import sys
import time
import traceback
import urllib.error
import urllib.request
import xml.etree.ElementTree as ElementTree

# Exact messages from shared/oss-errors.md §2 (typos included: they are what OSS sends).
MSG_NO_SUCH_KEY = "The specified key does not exist."
MSG_NO_SUCH_UPLOAD = (
    "The specified upload does not exist. The upload ID may be invalid, "
    "or the upload may have been aborted or completed."
)
MSG_INVALID_PART = (
    "One or more of the specified parts could not be found or the specified entity tag "
    "might not have matched the part's entity tag."
)
MSG_INVALID_PART_ORDER = "The list of parts was not in ascending order."
MSG_ENTITY_TOO_SMALL = "Your proposed upload smaller than the minimum allowed size."
MSG_PART_NUMBER = "Part number must be an integer between 1 and 10000, inclusive."
MSG_FILE_ALREADY_EXISTS = "The object you specified already exists and can not be overwritten."
MSG_INVALID_DIGEST = "The Content-MD5 you specified was invalid."
MSG_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your key and signing method."
)
MSG_INVALID_AK = "The OSS Access Key Id you provided does not exist in our records."
MSG_INVALID_TOKEN = "The security token you provided is invalid."
MSG_TOO_SKEWED = "The difference between the request time and the current time is too large."

MIN_PART_SIZE = 102400  # OSS: every part but the last must be >= 100 KB (102400 accepted).

# A key with a directory, Chinese characters, spaces, '+' and '=': every SDK encodes it
# differently on the wire (oss2 even encodes '/' as %2F), the server must decode it once.
TRICKY_KEY_TAIL = "数据/报告 2025 a+b=c.txt"


class Config:
    """The server coordinates handed over by the cargo test."""

    def __init__(self):
        missing = []

        def need(name):
            value = os.environ.get(name)
            if not value:
                missing.append(name)
            return value

        self.endpoint = need("OSSPIPE_INTEROP_ENDPOINT")
        self.access_key_id = need("OSSPIPE_INTEROP_ACCESS_KEY_ID")
        self.access_key_secret = need("OSSPIPE_INTEROP_ACCESS_KEY_SECRET")
        self.sts_access_key_id = need("OSSPIPE_INTEROP_STS_ACCESS_KEY_ID")
        self.sts_access_key_secret = need("OSSPIPE_INTEROP_STS_ACCESS_KEY_SECRET")
        self.sts_security_token = need("OSSPIPE_INTEROP_STS_SECURITY_TOKEN")
        self.region = need("OSSPIPE_INTEROP_REGION")
        self.bucket = need("OSSPIPE_INTEROP_BUCKET")
        self.prefix = need("OSSPIPE_INTEROP_PREFIX")
        if missing:
            sys.exit("interop: missing environment variables: " + ", ".join(missing))

    def key(self, name):
        """A key under this run's prefix."""
        return self.prefix + name


def payload(seed, size):
    """Deterministic pseudo-random bytes (so a failure reproduces byte for byte)."""
    return random.Random(seed).randbytes(size)


# CRC-64/XZ (the OSS `x-oss-hash-crc64ecma`), written out here so that expectations do not come
# from the SDK under test nor from the server. Table-driven; checked against the catalogue value
# at import time.
_CRC64_POLY_REFLECTED = 0xC96C5795D7870F42
_CRC64_TABLE = []
for _byte in range(256):
    _crc = _byte
    for _ in range(8):
        _crc = (_crc >> 1) ^ _CRC64_POLY_REFLECTED if _crc & 1 else _crc >> 1
    _CRC64_TABLE.append(_crc)


def _crc64_table(data, crc=0):
    crc = ~crc & 0xFFFFFFFFFFFFFFFF
    for b in data:
        crc = _CRC64_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return ~crc & 0xFFFFFFFFFFFFFFFF


try:
    # crcmod (a dependency of both Python SDKs) has a C extension that is far faster than the
    # loop above; it is cross-checked against the loop below.
    import crcmod as _crcmod

    _crc64_fast = _crcmod.mkCrcFun(
        0x142F0E1EBA9EA3693, initCrc=0, rev=True, xorOut=0xFFFFFFFFFFFFFFFF
    )
except ImportError:
    _crc64_fast = None


def crc64(data, crc=0):
    """CRC-64/XZ of `data`, continuing from `crc` (0 for a fresh start)."""
    if _crc64_fast is not None:
        return _crc64_fast(data, crc)
    return _crc64_table(data, crc)


assert _crc64_table(b"123456789") == 11051210869376104954, "CRC-64/XZ check value"
assert crc64(b"123456789") == 11051210869376104954, "CRC-64/XZ check value (crcmod)"
assert crc64(b"hello oss\n") == 17223430255209957478, "CRC-64/XZ vector from shared/vectors"


def md5_hex_upper(data):
    """The ETag OSS gives a PutObject / UploadPart: upper-case hex MD5, without quotes."""
    return hashlib.md5(data).hexdigest().upper()


def md5_base64(data):
    """A Content-MD5 header value."""
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def unquote_etag(etag):
    return etag.strip('"') if etag is not None else None


class CheckFailed(AssertionError):
    """A check's expectation did not hold."""


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


def expect_eq(actual, expected, what):
    if actual != expected:
        raise CheckFailed(f"{what}: expected {expected!r}, got {actual!r}")


class ServiceFailure:
    """What an SDK exposed of a service error, in SDK-neutral form."""

    def __init__(self, status, code, message, fields, headers, raw):
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}  # extra XML elements by name, when the SDK exposes them
        self.headers = headers  # response headers (case-insensitive mapping), when exposed
        self.raw = raw  # the SDK's exception, for the report

    def __repr__(self):
        return (
            f"ServiceFailure(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, fields={self.fields!r})"
        )


def expect_service_error(
    call, decode, status, code, message=None, fields=None, what="request"
):
    """Runs `call`, which must fail with a service error the SDK decoded as (status, code).

    `decode(exc)` turns the SDK's exception into a ServiceFailure, or returns None when the
    exception is not a service error at all (then this check fails and shows it). The message
    and the listed extra XML elements are compared exactly when given.
    """
    try:
        result = call()
    except Exception as exc:  # noqa: BLE001 - we classify every exception below
        failure = decode(exc)
        if failure is None:
            raise CheckFailed(
                f"{what}: expected service error {status} {code}, "
                f"but the SDK raised a non-service error: {type(exc).__name__}: {exc}"
            ) from exc
        problems = []
        if failure.status != status:
            problems.append(f"status {failure.status!r} (expected {status})")
        if failure.code != code:
            problems.append(f"code {failure.code!r} (expected {code!r})")
        if message is not None and failure.message != message:
            problems.append(f"message {failure.message!r} (expected {message!r})")
        for name, value in (fields or {}).items():
            got = failure.fields.get(name)
            if got != value:
                problems.append(f"<{name}> {got!r} (expected {value!r})")
        if problems:
            raise CheckFailed(
                f"{what}: wrong error: " + "; ".join(problems) + f" -- full: {failure!r}"
            )
        return failure
    raise CheckFailed(
        f"{what}: expected service error {status} {code}, but it succeeded: {result!r}"
    )


def http_get(url, headers=None):
    """Plain urllib GET, no SDK involved: returns (status, headers, body), errors included."""
    request = urllib.request.Request(url, headers=headers or {}, method="GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def tamper_signature(url):
    """The same presigned URL with one character of its signature (V1 or V4) changed."""
    match = re.search(r"(?:^|[?&])(?:Signature|x-oss-signature)=([^&])", url)
    expect(match is not None, f"no signature in {url}")
    index = match.start(1)
    replacement = "0" if url[index] != "0" else "1"
    return url[:index] + replacement + url[index + 1:]


def parse_error_xml(body):
    """The fields of an OSS <Error> document as a dict (empty if it is not one)."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return {}
    if root.tag != "Error":
        return {}
    return {child.tag: (child.text or "") for child in root}


def check_error_envelope(headers, fields, what):
    """The parts of the error envelope every SDK relies on (shared/oss-errors.md §1)."""
    request_id = headers.get("x-oss-request-id") if headers is not None else None
    expect(request_id, f"{what}: no x-oss-request-id header on the error response")
    expect(headers.get("Date"), f"{what}: no Date header on the error response")
    if fields:
        expect_eq(fields.get("RequestId"), request_id, f"{what}: <RequestId> vs x-oss-request-id")


class Runner:
    """Runs named checks, prints one line each, and a summary at the end."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = []
        self.started = time.monotonic()
        print(f"== {name}", flush=True)

    def check(self, title, fn, *args, **kwargs):
        """Runs fn; a raised exception fails this check only. Returns fn's result or None."""
        began = time.monotonic()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every failure is reported, none is fatal
            self.failed.append(title)
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            print(f"FAIL {title}: {detail}", flush=True)
            if not isinstance(exc, CheckFailed):
                # Where in the scripts it broke; the SDK's inner frames and chained causes
                # run to pages and rarely help.
                here = os.path.dirname(os.path.abspath(__file__))
                frames = [
                    frame
                    for frame in traceback.extract_tb(exc.__traceback__)
                    if os.path.dirname(os.path.abspath(frame.filename)) == here
                ]
                print("".join(traceback.format_list(frames)).rstrip(), flush=True)
            return None
        self.passed += 1
        print(f"ok   {title} ({time.monotonic() - began:.2f}s)", flush=True)
        return result

    def finish(self):
        elapsed = time.monotonic() - self.started
        print(
            f"RESULT {self.name}: {self.passed} checks passed, {len(self.failed)} failed "
            f"in {elapsed:.1f}s",
            flush=True,
        )
        for title in self.failed:
            print(f"  failed: {title}", flush=True)
        sys.exit(1 if self.failed else 0)
