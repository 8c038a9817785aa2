// Reads an OCI image layout (a directory, or a tar of one) back and takes the Wasm module out of it the way
// Istio's agent and Envoy Gateway do, checking every digest and size on the way. Written against the specs,
// not against scripts/oci-image.mjs: it parses the JSON, recomputes every sha256, and applies the fetchers'
// own rules, so an image it accepts is one those fetchers would unpack to the same bytes.
//
// The rules, from the sources (Istio pkg/wasm/imagefetcher.go; Envoy Gateway internal/wasm/imagefetcher.go is
// a port of it, same rules):
//   1. a Docker v2 manifest: the LAST layer must be application/vnd.docker.image.rootfs.diff.tar.gzip and
//      hold a file whose base name is plugin.wasm ("compat" variant, Docker flavour);
//   2. otherwise, if the LAST layer is application/vnd.oci.image.layer.v1.tar+gzip: the same, plugin.wasm in
//      a tar.gz ("compat" variant, OCI flavour; the spec also wants the manifest annotation
//      module.wasm.image/variant=compat);
//   3. otherwise the "oci" variant: EXACTLY TWO layers (the fetcher says "number of layers must be 2"), one of
//      them application/vnd.module.wasm.content.layer.v1+wasm, whose blob is the raw module;
//   and then Istio's cache refuses anything that does not start with the Wasm magic number.
// Specs: github.com/solo-io/wasm spec/spec.md ("oci") and spec/spec-compat.md ("compat"); OCI image-spec
// image-layout.md, manifest.md, descriptor.md.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

export const MEDIA = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerTarGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  wasmConfig: 'application/vnd.module.wasm.config.v1+json',
  wasmContent: 'application/vnd.module.wasm.content.layer.v1+wasm',
};

const WASM_MAGIC = Buffer.from([0x00, 0x61, 0x73, 0x6d]);

class OciError extends Error {}
const fail = (msg) => { throw new OciError(msg); };

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');

function parseJson(bytes, what) {
  try { return JSON.parse(Buffer.from(bytes).toString('utf8')); } catch (e) { return fail(`${what}: not JSON (${e.message})`); }
}

/**
 * A ustar reader (POSIX.1-1988 headers, plus the pax `x` and GNU `L` long-name records tar tools emit).
 * Returns Map<path, Buffer> of regular files; a `./` prefix is dropped. Refuses links and devices.
 */
export function untar(buf) {
  const files = new Map();
  let off = 0;
  let longName = null;
  const str = (b) => { const z = b.indexOf(0); return b.subarray(0, z < 0 ? b.length : z).toString('utf8'); };
  const octal = (b, what) => {
    const s = str(b).trim();
    if (!/^[0-7]*$/.test(s)) fail(`tar: bad ${what} field ${JSON.stringify(s)}`);
    return s === '' ? 0 : parseInt(s, 8);
  };
  while (off + 512 <= buf.length) {
    const h = buf.subarray(off, off + 512);
    if (h.every((x) => x === 0)) break; // end-of-archive marker
    let sum = 0;
    for (let i = 0; i < 512; i += 1) sum += i >= 148 && i < 156 ? 0x20 : h[i];
    if (sum !== octal(h.subarray(148, 156), 'checksum')) fail(`tar: header checksum mismatch at byte ${off}`);
    const size = octal(h.subarray(124, 136), 'size');
    const type = String.fromCharCode(h[156] || 0x30);
    const magic = h.subarray(257, 262).toString('latin1');
    const prefix = magic === 'ustar' ? str(h.subarray(345, 500)) : '';
    let name = longName ?? (prefix ? `${prefix}/${str(h.subarray(0, 100))}` : str(h.subarray(0, 100)));
    longName = null;
    const start = off + 512;
    if (start + size > buf.length) fail(`tar: ${name} runs past the end of the archive`);
    const data = buf.subarray(start, start + size);
    off = start + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(data.toString('utf8'));
      if (m) longName = m[1];
      continue;
    }
    if (type === 'L') { longName = str(data); continue; }
    if (type === 'g') continue;
    name = name.replace(/^\.\//, '');
    if (type === '5') continue;
    if (type !== '0') fail(`tar: ${name}: entry type ${JSON.stringify(type)} is not a regular file or directory`);
    if (name.split('/').includes('..') || path.isAbsolute(name)) fail(`tar: unsafe path ${name}`);
    if (files.has(name)) fail(`tar: ${name} appears twice`);
    files.set(name, Buffer.from(data));
  }
  return files;
}

function readDir(dir) {
  const files = new Map();
  const walk = (rel) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) files.set(r, fs.readFileSync(path.join(dir, r)));
      else fail(`${r}: not a regular file`);
    }
  };
  walk('');
  return files;
}

/** Checks a descriptor against the blob store and returns the blob's bytes. */
function blob(files, desc, what) {
  if (!desc || typeof desc !== 'object') fail(`${what}: no descriptor`);
  if (typeof desc.mediaType !== 'string' || !desc.mediaType) fail(`${what}: descriptor has no mediaType`);
  const m = /^sha256:([a-f0-9]{64})$/.exec(desc.digest ?? '');
  if (!m) fail(`${what}: digest ${JSON.stringify(desc.digest)} is not sha256:<64 hex>`);
  if (!Number.isSafeInteger(desc.size) || desc.size < 0) fail(`${what}: size ${JSON.stringify(desc.size)} is not a non-negative integer`);
  const bytes = files.get(`blobs/sha256/${m[1]}`);
  if (!bytes) fail(`${what}: blob ${desc.digest} is missing`);
  if (bytes.length !== desc.size) fail(`${what}: blob ${desc.digest} has ${bytes.length} bytes, descriptor says ${desc.size}`);
  const actual = sha256(bytes);
  if (actual !== m[1]) fail(`${what}: blob ${desc.digest} digest mismatch (content hashes to sha256:${actual})`);
  return bytes;
}

function plugInTarGz(bytes, what) {
  let tar;
  try { tar = zlib.gunzipSync(bytes); } catch (e) { return fail(`${what}: not gzip (${e.message})`); }
  for (const [name, data] of untar(tar)) if (path.posix.basename(name) === 'plugin.wasm') return data;
  return fail(`${what}: plugin.wasm not found in the layer`);
}

/**
 * Reads an OCI image layout from `src` (a directory, a .tar file, or a Buffer holding the tar) and returns
 * `{ variant, wasm, manifest, manifestDigest, manifestDescriptor, config, layers, index, files }`.
 * `ref` picks the manifest whose `org.opencontainers.image.ref.name` is `ref` when the index holds several.
 * Throws (an Error naming the blob and the rule) on any inconsistency.
 */
export function readOciLayout(src, { ref } = {}) {
  let files;
  if (Buffer.isBuffer(src)) files = untar(src);
  else if (fs.statSync(src).isDirectory()) files = readDir(src);
  else files = untar(fs.readFileSync(src));

  // image-layout.md: oci-layout, index.json, blobs/<alg>/<hex>.
  if (!files.has('oci-layout')) fail('oci-layout file missing');
  const layout = parseJson(files.get('oci-layout'), 'oci-layout');
  if (layout.imageLayoutVersion !== '1.0.0') fail(`oci-layout: imageLayoutVersion ${JSON.stringify(layout.imageLayoutVersion)}, want "1.0.0"`);
  if (!files.has('index.json')) fail('index.json missing');
  const index = parseJson(files.get('index.json'), 'index.json');
  if (index.schemaVersion !== 2) fail('index.json: schemaVersion must be 2');
  if (index.mediaType !== undefined && index.mediaType !== MEDIA.ociIndex) fail(`index.json: mediaType ${index.mediaType}`);
  if (!Array.isArray(index.manifests) || index.manifests.length === 0) fail('index.json: no manifests');

  // Every blob in the store is what its name says, referenced or not.
  for (const [name, bytes] of files) {
    if (!name.startsWith('blobs/')) continue;
    const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(name);
    if (!m) fail(`${name}: not a sha256 blob path`);
    const actual = sha256(bytes);
    if (actual !== m[1]) fail(`${name}: digest mismatch (content hashes to sha256:${actual})`);
  }

  const candidates = ref ? index.manifests.filter((d) => d.annotations?.['org.opencontainers.image.ref.name'] === ref) : index.manifests;
  if (candidates.length !== 1) fail(`index.json: ${candidates.length} manifests${ref ? ` tagged ${ref}` : ''}, want exactly one`);
  const manifestDescriptor = candidates[0];
  if (![MEDIA.ociManifest, MEDIA.dockerManifest].includes(manifestDescriptor.mediaType)) {
    fail(`index.json: manifest media type ${manifestDescriptor.mediaType} is not an image manifest (a nested index is not what Istio pulls)`);
  }
  const manifestBytes = blob(files, manifestDescriptor, 'manifest');
  const manifest = parseJson(manifestBytes, 'manifest');
  if (manifest.schemaVersion !== 2) fail('manifest: schemaVersion must be 2');
  if ((manifest.mediaType ?? MEDIA.ociManifest) !== manifestDescriptor.mediaType) {
    fail(`manifest: mediaType ${manifest.mediaType} differs from its descriptor's ${manifestDescriptor.mediaType}`);
  }
  const configBytes = blob(files, manifest.config, 'manifest.config');
  const config = manifest.config.mediaType.endsWith('+json') ? parseJson(configBytes, 'config') : null;
  if (!Array.isArray(manifest.layers) || manifest.layers.length === 0) fail('manifest: no layers');
  const layers = manifest.layers.map((d, i) => ({ descriptor: d, bytes: blob(files, d, `manifest.layers[${i}]`) }));

  let variant;
  let wasm;
  const last = layers[layers.length - 1];
  if (manifest.mediaType === MEDIA.dockerManifest) {
    if (last.descriptor.mediaType !== MEDIA.dockerLayer) fail(`docker manifest: last layer is ${last.descriptor.mediaType}, want ${MEDIA.dockerLayer}`);
    variant = 'compat-docker';
    wasm = plugInTarGz(last.bytes, 'last layer');
  } else if (last.descriptor.mediaType === MEDIA.ociLayerTarGzip) {
    if (manifest.annotations?.['module.wasm.image/variant'] !== 'compat') fail('compat image: manifest lacks the annotation module.wasm.image/variant=compat');
    variant = 'compat';
    wasm = plugInTarGz(last.bytes, 'last layer');
  } else {
    if (layers.length !== 2) fail(`oci variant: number of layers must be 2 but got ${layers.length} (Istio and Envoy Gateway refuse it)`);
    const content = layers.filter((l) => l.descriptor.mediaType === MEDIA.wasmContent);
    if (content.length === 0) fail(`oci variant: no layer of type ${MEDIA.wasmContent}`);
    if (content.length > 1) fail(`oci variant: ${content.length} layers of type ${MEDIA.wasmContent}`);
    const other = layers.find((l) => l.descriptor.mediaType !== MEDIA.wasmContent);
    if (other.descriptor.mediaType !== MEDIA.wasmConfig) fail(`oci variant: the other layer is ${other.descriptor.mediaType}, want ${MEDIA.wasmConfig}`);
    parseJson(other.bytes, 'runtime config layer');
    variant = 'oci';
    wasm = content[0].bytes;
  }
  if (wasm.length < 8 || !wasm.subarray(0, 4).equals(WASM_MAGIC)) fail('the extracted module does not start with the Wasm magic number');

  return {
    variant,
    wasm,
    manifest,
    manifestDigest: manifestDescriptor.digest,
    manifestDescriptor,
    config,
    layers: layers.map((l) => l.descriptor),
    index,
    files,
  };
}
