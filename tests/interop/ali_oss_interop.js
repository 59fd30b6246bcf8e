#!/usr/bin/env node
// Drives the local OSS server with ali-oss (Alibaba's Node.js SDK).
//
// Usage: node ali_oss_interop.js --auth v1|v4   (server coordinates come from the environment,
// the same OSSPIPE_INTEROP_* variables as the Python scripts; ali-oss itself is found through
// NODE_PATH, installed by .ci/interop-setup.sh under target/interop-node).
//
// ali-oss and an IP endpoint: it does not switch to path style. It sends `/<key>` to the IP and
// overrides the Host header with `<bucket>.oss-<region>.aliyuncs.com` (oss-protocol.md §1.2), so
// the server must take the bucket from that Host. The presigned-URL checks below send the same
// Host header, as a browser given such a URL would reach the real service by that name.
//
// ali-oss computes no CRC-64 at all, so every CRC here is checked by this script.
'use strict';

const crypto = require('crypto');
const http = require('http');
const OSS = require('ali-oss');

const MIN_PART_SIZE = 102400;
const TRICKY_KEY_TAIL = '数据/报告 2025 a+b=c.txt';
const MSG = {
  noSuchKey: 'The specified key does not exist.',
  noSuchUpload:
    'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
  invalidPart:
    "One or more of the specified parts could not be found or the specified entity tag might not have matched the part's entity tag.",
  invalidPartOrder: 'The list of parts was not in ascending order.',
  entityTooSmall: 'Your proposed upload smaller than the minimum allowed size.',
  partNumber: 'Part number must be an integer between 1 and 10000, inclusive.',
  fileAlreadyExists: 'The object you specified already exists and can not be overwritten.',
  invalidDigest: 'The Content-MD5 you specified was invalid.',
  signature:
    'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
  invalidAk: 'The OSS Access Key Id you provided does not exist in our records.',
  invalidToken: 'The security token you provided is invalid.',
};

// ---- configuration ------------------------------------------------------------------------

function config() {
  const names = {
    endpoint: 'OSSPIPE_INTEROP_ENDPOINT',
    accessKeyId: 'OSSPIPE_INTEROP_ACCESS_KEY_ID',
    accessKeySecret: 'OSSPIPE_INTEROP_ACCESS_KEY_SECRET',
    region: 'OSSPIPE_INTEROP_REGION',
    bucket: 'OSSPIPE_INTEROP_BUCKET',
    prefix: 'OSSPIPE_INTEROP_PREFIX',
    stsAccessKeyId: 'OSSPIPE_INTEROP_STS_ACCESS_KEY_ID',
    stsAccessKeySecret: 'OSSPIPE_INTEROP_STS_ACCESS_KEY_SECRET',
    stsSecurityToken: 'OSSPIPE_INTEROP_STS_SECURITY_TOKEN',
  };
  const cfg = {};
  const missing = [];
  for (const [field, name] of Object.entries(names)) {
    cfg[field] = process.env[name];
    if (!cfg[field]) missing.push(name);
  }
  if (missing.length) {
    console.error(`interop: missing environment variables: ${missing.join(', ')}`);
    process.exit(2);
  }
  cfg.key = (name) => cfg.prefix + name;
  return cfg;
}

// ---- helpers ------------------------------------------------------------------------------

// CRC-64/XZ, the OSS x-oss-hash-crc64ecma (decimal). Table-driven over BigInt.
const CRC64_TABLE = (() => {
  const poly = 0xc96c5795d7870f42n;
  const table = new Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = BigInt(i);
    for (let j = 0; j < 8; j++) crc = crc & 1n ? (crc >> 1n) ^ poly : crc >> 1n;
    table[i] = crc;
  }
  return table;
})();
const MASK64 = 0xffffffffffffffffn;

function crc64(buf) {
  let crc = MASK64;
  for (const byte of buf) crc = CRC64_TABLE[Number((crc ^ BigInt(byte)) & 0xffn)] ^ (crc >> 8n);
  return (crc ^ MASK64).toString();
}
if (crc64(Buffer.from('123456789')) !== '11051210869376104954') throw new Error('CRC-64 check value');
if (crc64(Buffer.from('hello oss\n')) !== '17223430255209957478') throw new Error('CRC-64 vector');

function md5Hex(buf) {
  return crypto.createHash('md5').update(buf).digest('hex').toUpperCase();
}
function md5Base64(buf) {
  return crypto.createHash('md5').update(buf).digest('base64');
}

// Deterministic pseudo-random bytes (xorshift32), so a failure reproduces byte for byte.
function payload(seed, size) {
  let state = 2166136261;
  for (const ch of Buffer.from(seed)) state = Math.imul(state ^ ch, 16777619) >>> 0;
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    out[i] = state & 0xff;
  }
  return out;
}

class CheckFailed extends Error {}

function expect(cond, message) {
  if (!cond) throw new CheckFailed(message);
}
function expectEq(actual, expected, what) {
  const a = Buffer.isBuffer(actual) ? `<${actual.length} bytes md5 ${md5Hex(actual)}>` : JSON.stringify(actual);
  const e = Buffer.isBuffer(expected) ? `<${expected.length} bytes md5 ${md5Hex(expected)}>` : JSON.stringify(expected);
  if (a !== e) throw new CheckFailed(`${what}: expected ${e}, got ${a}`);
}

// Runs `call`, which must fail with an OSS error that ali-oss decoded as (status, code[, message]).
async function expectServiceError(call, status, code, message, what) {
  let result;
  try {
    result = await call();
  } catch (err) {
    if (err instanceof CheckFailed) throw err;
    const problems = [];
    if (err.status !== status) problems.push(`status ${err.status} (expected ${status})`);
    if (err.code !== code) problems.push(`code ${JSON.stringify(err.code)} (expected ${code})`);
    if (message !== null && err.message !== message) {
      problems.push(`message ${JSON.stringify(err.message)} (expected ${JSON.stringify(message)})`);
    }
    if (problems.length) {
      throw new CheckFailed(
        `${what}: wrong error: ${problems.join('; ')} -- ${err.name}: ${err.message} (requestId ${err.requestId})`
      );
    }
    return err;
  }
  throw new CheckFailed(`${what}: expected ${status} ${code}, but it succeeded (status ${result && result.res && result.res.status})`);
}

// A plain node:http GET (no SDK), with an optional Host header override.
function httpGet(url, headers) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: headers || {} }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(30000, () => req.destroy(new Error(`timeout: GET ${url}`)));
  });
}

function xmlField(body, name) {
  const m = new RegExp(`<${name}>([^<]*)</${name}>`).exec(body.toString('utf8'));
  return m ? m[1] : undefined;
}

function tamperSignature(url) {
  const m = /[?&](?:Signature|x-oss-signature)=([^&])/.exec(url);
  expect(m, `no signature in ${url}`);
  const index = m.index + m[0].length - 1;
  return url.slice(0, index) + (url[index] === '0' ? '1' : '0') + url.slice(index + 1);
}

// ---- the checks -------------------------------------------------------------------------

class AliOssInterop {
  constructor(cfg, auth) {
    this.cfg = cfg;
    this.auth = auth;
    this.client = this.makeClient();
    this.smallKey = cfg.key(`small/${TRICKY_KEY_TAIL}`);
    this.smallData = Buffer.from('hello oss\n'.repeat(43));
    // The name under which ali-oss addresses the bucket (and sends as Host) for an IP endpoint.
    this.virtualHost = `${cfg.bucket}.oss-${cfg.region}.aliyuncs.com`;
    this.mp = {};
  }

  makeClient(overrides) {
    return new OSS({
      accessKeyId: this.cfg.accessKeyId,
      accessKeySecret: this.cfg.accessKeySecret,
      bucket: this.cfg.bucket,
      // ali-oss wants the "oss-" form; it strips it for the V4 scope.
      region: `oss-${this.cfg.region}`,
      endpoint: this.cfg.endpoint,
      authorizationV4: this.auth === 'v4',
      timeout: 30000,
      ...overrides,
    });
  }

  async putSmall() {
    // ali-oss computes and sends Content-MD5 for Buffer bodies; the server verifies it.
    const result = await this.client.put(this.smallKey, this.smallData, {
      mime: 'text/plain',
      meta: { author: 'alice', project: 'Interop Test' },
    });
    const h = result.res.headers;
    expectEq(result.res.status, 200, 'PutObject status');
    expectEq(h.etag, `"${md5Hex(this.smallData)}"`, 'PutObject ETag');
    expectEq(h['x-oss-hash-crc64ecma'], crc64(this.smallData), 'PutObject CRC');
    expect(h['x-oss-request-id'], 'PutObject has no x-oss-request-id');
  }

  async getSmall() {
    const result = await this.client.get(this.smallKey);
    const h = result.res.headers;
    expectEq(result.content, this.smallData, 'GetObject body');
    expectEq(h['x-oss-meta-author'], 'alice', 'x-oss-meta-author');
    expectEq(h['x-oss-meta-project'], 'Interop Test', 'x-oss-meta-project');
    expectEq(h['content-type'], 'text/plain', 'Content-Type');
    expectEq(h['x-oss-hash-crc64ecma'], crc64(this.smallData), 'GetObject CRC');
  }

  async headSmall() {
    const result = await this.client.head(this.smallKey);
    const h = result.res.headers;
    expectEq(result.status, 200, 'HeadObject status');
    expectEq(result.meta, { author: 'alice', project: 'Interop Test' }, 'HeadObject meta');
    expectEq(Number(h['content-length']), this.smallData.length, 'HeadObject Content-Length');
    expectEq(h.etag, `"${md5Hex(this.smallData)}"`, 'HeadObject ETag');
    expectEq(h['x-oss-object-type'], 'Normal', 'x-oss-object-type');
    expectEq(h['x-oss-hash-crc64ecma'], crc64(this.smallData), 'HeadObject CRC');
  }

  async mpInitiate() {
    const key = this.cfg.key(`multipart/${TRICKY_KEY_TAIL}`);
    const result = await this.client.initMultipartUpload(key, { mime: 'application/x-interop', meta: { stage: 'mp' } });
    expect(result.uploadId, 'InitiateMultipartUpload returned no UploadId');
    const sizes = [200000, MIN_PART_SIZE, 150000, 4242];
    this.mp = { key, uploadId: result.uploadId, datas: sizes.map((s, i) => payload(`node-part-${i + 1}`, s)), parts: [] };
  }

  async mpUploadParts() {
    const { key, uploadId, datas } = this.mp;
    for (const number of [3, 1, 4, 2]) {
      const data = datas[number - 1];
      const result = await this.client.uploadPart(key, uploadId, number, data, 0, data.length);
      expectEq(result.etag, `"${md5Hex(data)}"`, `part ${number} ETag`);
      expectEq(result.res.headers['x-oss-hash-crc64ecma'], crc64(data), `part ${number} CRC`);
      this.mp.parts.push({ number, etag: result.etag });
    }
  }

  async mpListParts() {
    const { key, uploadId, datas } = this.mp;
    const result = await this.client.listParts(key, uploadId);
    // xml2js hands back the raw text of IsTruncated, and a lone <Part> as an object.
    expectEq(String(result.isTruncated), 'false', 'ListParts IsTruncated');
    const got = [].concat(result.parts).map((p) => [Number(p.PartNumber), p.ETag, Number(p.Size)]);
    const want = datas.map((d, i) => [i + 1, `"${md5Hex(d)}"`, d.length]);
    expectEq(got, want, 'ListParts (number, etag, size)');
    const page = await this.client.listParts(key, uploadId, { 'max-parts': 3 });
    expectEq([].concat(page.parts).map((p) => Number(p.PartNumber)), [1, 2, 3], 'ListParts max-parts=3');
    expectEq(String(page.isTruncated), 'true', 'ListParts page IsTruncated');
    expectEq(String(page.nextPartNumberMarker), '3', 'ListParts nextPartNumberMarker');
  }

  async mpListUploads() {
    const { key, uploadId } = this.mp;
    const result = await this.client.listUploads({ prefix: this.cfg.key('multipart/') });
    const found = (result.uploads || []).map((u) => [u.name, u.uploadId]);
    expect(
      found.some(([k, id]) => k === key && id === uploadId),
      `ListMultipartUploads lacks ${JSON.stringify([key, uploadId])}: ${JSON.stringify(found)}`
    );
  }

  async mpComplete() {
    const { key, uploadId, parts, datas } = this.mp;
    const result = await this.client.completeMultipartUpload(key, uploadId, parts);
    const whole = Buffer.concat(datas);
    expectEq(result.res.status, 200, 'Complete status');
    expectEq(result.res.headers['x-oss-hash-crc64ecma'], crc64(whole), 'Complete CRC');
    expect(/^"[0-9A-F]{32}-4"$/.test(result.etag || ''), `multipart ETag ${result.etag}`);
  }

  async mpReadBack() {
    const { key, datas } = this.mp;
    const whole = Buffer.concat(datas);
    const head = await this.client.head(key);
    expectEq(Number(head.res.headers['content-length']), whole.length, 'multipart Content-Length');
    expectEq(head.res.headers['x-oss-object-type'], 'Multipart', 'multipart object type');
    expectEq(head.res.headers['x-oss-hash-crc64ecma'], crc64(whole), 'multipart HEAD CRC');
    expectEq(head.meta, { stage: 'mp' }, 'metadata from Initiate');
    expectEq(head.res.headers['content-type'], 'application/x-interop', 'Content-Type from Initiate');
    const got = await this.client.get(key);
    expectEq(got.content, whole, 'multipart GET body');
  }

  async managedMultipartUpload() {
    // ali-oss's own uploader: parts of 100 KiB, 3 in parallel, from a Buffer.
    const data = payload('node-managed', 4 * MIN_PART_SIZE + 999);
    const key = this.cfg.key(`managed/${TRICKY_KEY_TAIL}`);
    const result = await this.client.multipartUpload(key, data, { partSize: MIN_PART_SIZE, parallel: 3, meta: { via: 'managed' } });
    expectEq(result.res.status, 200, 'multipartUpload status');
    const head = await this.client.head(key);
    expectEq(head.res.headers['x-oss-object-type'], 'Multipart', 'multipartUpload object type');
    expectEq(head.res.headers['x-oss-hash-crc64ecma'], crc64(data), 'multipartUpload CRC');
    expectEq((await this.client.get(key)).content, data, 'multipartUpload body');
  }

  async abortThenNoSuchUpload() {
    const key = this.cfg.key(`aborted/${TRICKY_KEY_TAIL}`);
    const { uploadId } = await this.client.initMultipartUpload(key);
    const data = payload('abort', MIN_PART_SIZE);
    const part = await this.client.uploadPart(key, uploadId, 1, data, 0, data.length);
    const result = await this.client.abortMultipartUpload(key, uploadId);
    expectEq(result.res.status, 204, 'Abort status');
    const listed = await this.client.listUploads({ prefix: this.cfg.key('aborted/') });
    expect(!(listed.uploads || []).some((u) => u.uploadId === uploadId), 'aborted upload still listed');
    await expectServiceError(
      () => this.client.uploadPart(key, uploadId, 2, Buffer.from('x'), 0, 1),
      404, 'NoSuchUpload', MSG.noSuchUpload, 'UploadPart after abort'
    );
    await expectServiceError(() => this.client.listParts(key, uploadId), 404, 'NoSuchUpload', MSG.noSuchUpload, 'ListParts after abort');
    await expectServiceError(
      () => this.client.completeMultipartUpload(key, uploadId, [{ number: 1, etag: part.etag }]),
      404, 'NoSuchUpload', MSG.noSuchUpload, 'Complete after abort'
    );
    await expectServiceError(() => this.client.abortMultipartUpload(key, uploadId), 404, 'NoSuchUpload', MSG.noSuchUpload, 'second Abort');
  }

  async getMissingKey() {
    const key = this.cfg.key(`missing/${TRICKY_KEY_TAIL}`);
    const err = await expectServiceError(() => this.client.get(key), 404, 'NoSuchKey', MSG.noSuchKey, 'GetObject of a missing key');
    expect(err.requestId, 'NoSuchKey without a RequestId');
  }

  async headMissingKey() {
    // ali-oss reports every body-less 404 on HEAD as NoSuchKey without reading x-oss-err, so
    // this only proves the status; the x-oss-err decoding is covered by the 403 HEAD below.
    const key = this.cfg.key(`missing/${TRICKY_KEY_TAIL}`);
    await expectServiceError(() => this.client.head(key), 404, 'NoSuchKey', null, 'HeadObject of a missing key');
  }

  async invalidPart() {
    const key = this.cfg.key('errors/invalid-part');
    const { uploadId } = await this.client.initMultipartUpload(key);
    const data = payload('ip', MIN_PART_SIZE);
    await this.client.uploadPart(key, uploadId, 1, data, 0, data.length);
    await expectServiceError(
      () => this.client.completeMultipartUpload(key, uploadId, [{ number: 1, etag: `"${'A'.repeat(32)}"` }]),
      400, 'InvalidPart', MSG.invalidPart, 'Complete with a wrong ETag'
    );
    await this.client.abortMultipartUpload(key, uploadId);
  }

  async invalidPartOrder() {
    const key = this.cfg.key('errors/part-order');
    const { uploadId } = await this.client.initMultipartUpload(key);
    const etags = [];
    for (const n of [1, 2]) {
      const data = payload(`po-${n}`, MIN_PART_SIZE);
      etags.push((await this.client.uploadPart(key, uploadId, n, data, 0, data.length)).etag);
    }
    // completeMultipartUpload sorts the parts, so send the XML through ali-oss's own signed
    // request path to put them out of order.
    const xml =
      '<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUpload>\n' +
      `<Part>\n<PartNumber>2</PartNumber>\n<ETag>${etags[1]}</ETag>\n</Part>\n` +
      `<Part>\n<PartNumber>1</PartNumber>\n<ETag>${etags[0]}</ETag>\n</Part>\n` +
      '</CompleteMultipartUpload>';
    const params = this.client._objectRequestParams('POST', key, { subres: { uploadId } });
    params.mime = 'xml';
    params.content = xml;
    params.successStatuses = [200];
    params.xmlResponse = true;
    await expectServiceError(() => this.client.request(params), 400, 'InvalidPartOrder', MSG.invalidPartOrder, 'Complete with parts 2,1');
    await this.client.abortMultipartUpload(key, uploadId);
  }

  async entityTooSmall() {
    const key = this.cfg.key('errors/too-small');
    const { uploadId } = await this.client.initMultipartUpload(key);
    const parts = [];
    for (const [n, data] of [[1, payload('small', MIN_PART_SIZE - 1)], [2, Buffer.from('last')]]) {
      parts.push({ number: n, etag: (await this.client.uploadPart(key, uploadId, n, data, 0, data.length)).etag });
    }
    await expectServiceError(
      () => this.client.completeMultipartUpload(key, uploadId, parts),
      400, 'EntityTooSmall', MSG.entityTooSmall, 'Complete with a 102399-byte first part'
    );
    await this.client.abortMultipartUpload(key, uploadId);
  }

  async partNumber10001() {
    const key = this.cfg.key('errors/part-number');
    const { uploadId } = await this.client.initMultipartUpload(key);
    const data = Buffer.from('data');
    await expectServiceError(
      () => this.client.uploadPart(key, uploadId, 10001, data, 0, data.length),
      400, 'InvalidArgument', MSG.partNumber, 'UploadPart 10001'
    );
    await this.client.abortMultipartUpload(key, uploadId);
  }

  async forbidOverwrite() {
    const key = this.cfg.key('errors/forbid-overwrite');
    const forbid = { headers: { 'x-oss-forbid-overwrite': 'true' } };
    await this.client.put(key, Buffer.from('original'), forbid);
    await expectServiceError(
      () => this.client.put(key, Buffer.from('new'), forbid),
      409, 'FileAlreadyExists', MSG.fileAlreadyExists, 'PutObject with forbid-overwrite'
    );
    const { uploadId } = await this.client.initMultipartUpload(key);
    const data = Buffer.from('new');
    const part = await this.client.uploadPart(key, uploadId, 1, data, 0, data.length);
    await expectServiceError(
      () => this.client.completeMultipartUpload(key, uploadId, [{ number: 1, etag: part.etag }], forbid),
      409, 'FileAlreadyExists', MSG.fileAlreadyExists, 'Complete with forbid-overwrite'
    );
    expectEq((await this.client.get(key)).content, Buffer.from('original'), 'object after refusals');
    await this.client.abortMultipartUpload(key, uploadId);
  }

  async invalidDigest() {
    const key = this.cfg.key('errors/bad-md5');
    await expectServiceError(
      () => this.client.put(key, Buffer.from('body'), { headers: { 'Content-MD5': md5Base64(Buffer.from('other')) } }),
      400, 'InvalidDigest', MSG.invalidDigest, 'PutObject with a wrong Content-MD5'
    );
  }

  async wrongSecret() {
    const client = this.makeClient({ accessKeySecret: 'not-the-secret' });
    await expectServiceError(
      () => client.put(this.cfg.key('errors/wrong-secret'), Buffer.from('x')),
      403, 'SignatureDoesNotMatch', MSG.signature, 'PutObject with a wrong secret'
    );
    // A body-less 403 on HEAD: ali-oss decodes the code from x-oss-err.
    await expectServiceError(
      () => client.head(this.smallKey),
      403, 'SignatureDoesNotMatch', MSG.signature, 'HeadObject with a wrong secret (x-oss-err)'
    );
  }

  async unknownAccessKey() {
    const client = this.makeClient({ accessKeyId: 'LTAIunknownKeyId0000' });
    await expectServiceError(
      () => client.get(this.smallKey),
      403, 'InvalidAccessKeyId', MSG.invalidAk, 'GetObject with an unknown key id'
    );
  }

  stsClient(token) {
    return this.makeClient({
      accessKeyId: this.cfg.stsAccessKeyId,
      accessKeySecret: this.cfg.stsAccessKeySecret,
      stsToken: token || this.cfg.stsSecurityToken,
    });
  }

  async stsRoundTrip() {
    // ali-oss sends the token as x-oss-security-token (signed, V1 and V4).
    const client = this.stsClient();
    const key = this.cfg.key(`sts/${TRICKY_KEY_TAIL}`);
    const data = payload('node-sts', 3 * MIN_PART_SIZE + 5);
    await client.put(key, data.subarray(0, 5000));
    expectEq((await client.get(key)).content, data.subarray(0, 5000), 'GetObject with STS credentials');
    await client.multipartUpload(key, data, { partSize: MIN_PART_SIZE, parallel: 2 });
    expectEq((await client.get(key)).content, data, 'multipartUpload with STS credentials');
  }

  async stsWrongToken() {
    const client = this.stsClient('CAIS-not-the-token');
    await expectServiceError(
      () => client.put(this.cfg.key('sts/wrong'), Buffer.from('x')),
      403, 'InvalidSecurityToken', MSG.invalidToken, 'PutObject with a wrong security token'
    );
  }

  async presignedUrl() {
    if (this.auth === 'v4') {
      // For an IP endpoint: http://127.0.0.1:PORT/<key>, to be sent with the bucket's Host.
      return this.client.signatureUrlV4('GET', 300, undefined, this.smallKey);
    }
    // ali-oss's V1 signatureUrl refuses IP endpoints ("can not get the object URL when endpoint
    // is IP"), so sign with `localhost` as the endpoint: the URL becomes the virtual-hosted
    // http://<bucket>.localhost:PORT/<key>. The signature does not depend on the host.
    const signer = this.makeClient({ endpoint: this.cfg.endpoint.replace('127.0.0.1', 'localhost') });
    return signer.signatureUrl(this.smallKey, { expires: 300 });
  }

  // GETs a presigned URL from the server: an IP URL goes with the Host ali-oss itself would send,
  // a `<bucket>.localhost` URL is sent to 127.0.0.1 with that name as Host (resolvers need not
  // know *.localhost).
  async fetchPresigned(url) {
    const parsed = new URL(url);
    let host = this.virtualHost;
    if (parsed.hostname.endsWith('.localhost')) {
      host = parsed.host;
      parsed.hostname = '127.0.0.1';
    }
    return { host, res: await httpGet(parsed.toString(), { host }) };
  }

  async presignedGet() {
    const url = await this.presignedUrl();
    const marker = this.auth === 'v4' ? 'x-oss-signature=' : 'Signature=';
    expect(url.includes(marker), `${this.auth} presigned URL lacks ${marker}: ${url}`);
    const { host, res } = await this.fetchPresigned(url);
    expectEq(res.status, 200, `GET ${url} (Host: ${host}): ${res.body.toString('utf8', 0, 400)}`);
    expectEq(res.body, this.smallData, 'presigned GET body');
  }

  async presignedGetTampered() {
    const { res } = await this.fetchPresigned(tamperSignature(await this.presignedUrl()));
    expectEq([res.status, xmlField(res.body, 'Code')], [403, 'SignatureDoesNotMatch'], 'tampered URL');
  }
}

async function main() {
  const argIndex = process.argv.indexOf('--auth');
  const auth = argIndex > 0 ? process.argv[argIndex + 1] : undefined;
  if (auth !== 'v1' && auth !== 'v4') {
    console.error('usage: ali_oss_interop.js --auth v1|v4');
    process.exit(2);
  }
  const cfg = config();
  const suite = new AliOssInterop(cfg, auth);
  const version = require('ali-oss/package.json').version;
  console.log(`== ali-oss ${version} auth=${auth} endpoint=${cfg.endpoint} (Host ${suite.virtualHost})`);
  const started = Date.now();
  const failed = [];
  let passed = 0;
  const checks = [
    ['PutObject: tricky key, metadata, auto Content-MD5', () => suite.putSmall()],
    ['GetObject: body, metadata, CRC', () => suite.getSmall()],
    ['HeadObject: size, ETag, type, CRC, metadata', () => suite.headSmall()],
    ['multipart: Initiate', () => suite.mpInitiate()],
    ['multipart: UploadPart x4 out of order', () => suite.mpUploadParts()],
    ['multipart: ListParts incl. max-parts', () => suite.mpListParts()],
    ['multipart: ListMultipartUploads', () => suite.mpListUploads()],
    ['multipart: Complete', () => suite.mpComplete()],
    ['multipart: HEAD/GET of the result', () => suite.mpReadBack()],
    ['multipartUpload (managed, 5 parts, parallel 3)', () => suite.managedMultipartUpload()],
    ['Abort then NoSuchUpload everywhere', () => suite.abortThenNoSuchUpload()],
    ['NoSuchKey on GET', () => suite.getMissingKey()],
    ['404 on HEAD of a missing key', () => suite.headMissingKey()],
    ['InvalidPart at Complete', () => suite.invalidPart()],
    ['InvalidPartOrder at Complete', () => suite.invalidPartOrder()],
    ['EntityTooSmall at Complete', () => suite.entityTooSmall()],
    ['InvalidArgument for part number 10001', () => suite.partNumber10001()],
    ['FileAlreadyExists on Put and Complete', () => suite.forbidOverwrite()],
    ['InvalidDigest on Put', () => suite.invalidDigest()],
    ['SignatureDoesNotMatch with a wrong secret', () => suite.wrongSecret()],
    ['InvalidAccessKeyId with an unknown key id', () => suite.unknownAccessKey()],
    ['STS credentials: Put/Get/multipartUpload', () => suite.stsRoundTrip()],
    ['InvalidSecurityToken with a wrong STS token', () => suite.stsWrongToken()],
    [`presigned GET URL (${auth}) via node:http`, () => suite.presignedGet()],
    [`tampered presigned URL (${auth}) refused`, () => suite.presignedGetTampered()],
  ];
  for (const [title, fn] of checks) {
    const began = Date.now();
    try {
      await fn();
      passed += 1;
      console.log(`ok   ${title} (${((Date.now() - began) / 1000).toFixed(2)}s)`);
    } catch (err) {
      failed.push(title);
      console.log(`FAIL ${title}: ${err instanceof CheckFailed ? err.message : (err && err.stack) || err}`);
      if (!(err instanceof CheckFailed) && err && err.status) {
        console.log(`     (status ${err.status}, code ${err.code}, requestId ${err.requestId})`);
      }
    }
  }
  console.log(
    `RESULT ali-oss auth=${auth}: ${passed} checks passed, ${failed.length} failed in ${((Date.now() - started) / 1000).toFixed(1)}s`
  );
  for (const title of failed) console.log(`  failed: ${title}`);
  process.exit(failed.length ? 1 : 0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
