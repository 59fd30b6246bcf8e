"""Streams standard input into OSS with the official Python SDK v2's Uploader.upload_from.

Run by the benchmark harness (benches/harness) with standard input piped from its generator, so
the SDK sees what a user's pipe gives it: a non-seekable stream of unknown size. Credentials come
from OSS_ACCESS_KEY_ID / OSS_ACCESS_KEY_SECRET. Without --part-size / --parallel the uploader's
defaults apply (6 MiB parts, 3 threads; oss-protocol.md section 11).

Prints one JSON line: bytes, seconds and CPU seconds (all threads) of the upload itself, which
leaves out the interpreter's start and the SDK's import, and the CRC-64 the SDK folded.
"""

import argparse
import json
import os
import sys
import time

import alibabacloud_oss_v2 as oss


class PipeReader:
    """Only read(n): no len, seek or tell, so the uploader treats it as a stream of unknown size."""

    def __init__(self, raw):
        self.raw = raw
        self.total = 0

    def read(self, n=-1):
        data = self.raw.read(n)
        self.total += len(data)
        return data


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--part-size", type=int)
    parser.add_argument("--parallel", type=int)
    args = parser.parse_args()

    config = oss.config.load_default()
    config.credentials_provider = oss.credentials.StaticCredentialsProvider(
        os.environ["OSS_ACCESS_KEY_ID"], os.environ["OSS_ACCESS_KEY_SECRET"]
    )
    config.region = args.region
    config.endpoint = args.endpoint
    config.disable_ssl = True
    client = oss.Client(config)
    options = {}
    if args.part_size:
        options["part_size"] = args.part_size
    if args.parallel:
        options["parallel_num"] = args.parallel
    uploader = client.uploader(**options)

    reader = PipeReader(sys.stdin.buffer)
    cpu = time.process_time()
    start = time.perf_counter()
    result = uploader.upload_from(oss.PutObjectRequest(bucket=args.bucket, key=args.key), reader)
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    crc = int(result.hash_crc64) if result.hash_crc64 else None
    print(json.dumps({"bytes": reader.total, "seconds": seconds, "cpu_seconds": cpu, "crc64": crc}))


if __name__ == "__main__":
    main()
