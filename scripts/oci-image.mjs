#!/usr/bin/env node
// Packages target/portcullis.wasm as an OCI image that Istio's WasmPlugin (`url: oci://...`) and Envoy
// Gateway's EnvoyExtensionPolicy (`code.type: Image`) pull, written as an OCI image layout directory
// (oci-layout, index.json, blobs/sha256/...) plus a tar of that directory. No registry, no docker: push the
// result with oras, crane or skopeo (see the `oci` recipe in the justfile).
//
//   node scripts/oci-image.mjs [--compat] [--wasm FILE] [--out DIR] [--name NAME] [--tag TAG]
//
// Default: the "oci" variant of the Wasm image spec (github.com/solo-io/wasm spec/spec.md), which both
// fetchers accept as: an OCI manifest with EXACTLY TWO layers, a runtime config
// (application/vnd.module.wasm.config.v1+json) and the raw module
// (application/vnd.module.wasm.content.layer.v1+wasm). The runtime config is also the manifest's config.
// A manifest with only the module as its single layer (what `oras push --config` gives) is refused by
// Istio's and Envoy Gateway's fetchers ("number of layers must be 2 but got 1").
// --compat: the "compat" variant (spec-compat.md): one application/vnd.oci.image.layer.v1.tar+gzip layer
// holding plugin.wasm, the annotation module.wasm.image/variant=compat, a minimal image config.
//
// Deterministic: the same module gives the same digests (no timestamps, fixed tar headers, sorted entries,
// fixed gzip level; `created` only when SOURCE_DATE_EPOCH is set). After writing, the image is read back
// through tests/lib/oci.mjs (an independent reader) and must yield the input module byte for byte.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

import { MEDIA, readOciLayout } from '../tests/lib/oci.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function args(argv) {
  const o = { compat: false, wasm: 'target/portcullis.wasm', out: 'target/oci', name: null, tag: null };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    if (a === '--compat') o.compat = true;
    else if (['--wasm', '--out', '--name', '--tag'].includes(a) && argv[i + 1]) { o[a.slice(2)] = argv[i + 1]; i += 1; } else {
      console.error(`usage: node scripts/oci-image.mjs [--compat] [--wasm FILE] [--out DIR] [--name NAME] [--tag TAG] (got ${a})`);
      process.exit(2);
    }
  }
  o.name ??= o.compat ? 'portcullis-compat' : 'portcullis';
  return o;
}

/** The workspace version from the root Cargo.toml ([workspace.package] version). */
function workspaceVersion() {
  const toml = fs.readFileSync(path.join(ROOT, 'Cargo.toml'), 'utf8');
  const section = /\[workspace\.package\]([\s\S]*?)(?:\n\[|$)/.exec(toml);
  const v = section && /^\s*version\s*=\s*"([^"]+)"/m.exec(section[1]);
  return v ? v[1] : '0.0.0';
}

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
const json = (v) => Buffer.from(JSON.stringify(v));

/** A ustar archive of `entries` ([{ name, data } | { name, dir: true }]), every header fixed (mtime 0, root). */
function tar(entries) {
  const blocks = [];
  for (const e of entries) {
    const h = Buffer.alloc(512);
    const data = e.dir ? Buffer.alloc(0) : e.data;
    const name = e.dir ? `${e.name.replace(/\/$/, '')}/` : e.name;
    if (Buffer.byteLength(name) > 100) throw new Error(`tar: name too long: ${name}`);
    const put = (off, len, s) => h.write(s, off, len, 'latin1');
    const oct = (off, len, n) => put(off, len, `${n.toString(8).padStart(len - 1, '0')}\0`);
    put(0, 100, name);
    oct(100, 8, e.dir ? 0o755 : 0o644);
    oct(108, 8, 0);
    oct(116, 8, 0);
    oct(124, 12, data.length);
    oct(136, 12, 0);
    h.fill(0x20, 148, 156);
    put(156, 1, e.dir ? '5' : '0');
    put(257, 6, 'ustar\0');
    put(263, 2, '00');
    let sum = 0;
    for (const b of h) sum += b;
    put(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
    blocks.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** The proxy-wasm ABI versions the module exports (`proxy_abi_version_0_2_1` → `0_2_1`). */
function abiVersions(wasm) {
  const found = new Set();
  for (const m of wasm.toString('latin1').matchAll(/proxy_abi_version_(\d+_\d+_\d+)/g)) found.add(m[1]);
  return [...found].sort();
}

function build({ wasm, compat, version }) {
  const blobs = new Map();
  const add = (mediaType, bytes, annotations) => {
    const digest = `sha256:${sha256(bytes)}`;
    blobs.set(digest, bytes);
    return { mediaType, digest, size: bytes.length, ...(annotations ? { annotations } : {}) };
  };
  const annotations = {
    'org.opencontainers.image.title': 'portcullis',
    'org.opencontainers.image.description': 'Portcullis: OpenID Connect single sign-on as a proxy-wasm filter for Envoy',
    'org.opencontainers.image.version': version,
    'org.opencontainers.image.licenses': 'Apache-2.0',
  };
  if (process.env.SOURCE_DATE_EPOCH) {
    annotations['org.opencontainers.image.created'] = new Date(Number(process.env.SOURCE_DATE_EPOCH) * 1000).toISOString().replace(/\.000Z$/, 'Z');
  }

  let manifest;
  if (!compat) {
    // spec.md: type envoy_proxy, the ABI versions, the root ids the module registers (any root_id reaches
    // Portcullis' one root context; `portcullis` is the one the example configs use).
    const runtime = json({ type: 'envoy_proxy', abiVersions: abiVersions(wasm), config: { root_ids: ['portcullis'] } });
    const configDesc = add(MEDIA.wasmConfig, runtime);
    manifest = {
      schemaVersion: 2,
      mediaType: MEDIA.ociManifest,
      config: configDesc,
      layers: [
        { ...configDesc, annotations: { 'org.opencontainers.image.title': 'runtime-config.json' } },
        add(MEDIA.wasmContent, wasm, { 'org.opencontainers.image.title': 'plugin.wasm' }),
      ],
      annotations,
    };
  } else {
    const layerTar = tar([{ name: 'plugin.wasm', data: wasm }]);
    const layer = add(MEDIA.ociLayerTarGzip, zlib.gzipSync(layerTar, { level: 9 }), { 'org.opencontainers.image.title': 'plugin.wasm' });
    const config = json({
      architecture: 'wasm',
      os: 'wasip1',
      config: {},
      rootfs: { type: 'layers', diff_ids: [`sha256:${sha256(layerTar)}`] },
    });
    manifest = {
      schemaVersion: 2,
      mediaType: MEDIA.ociManifest,
      config: add(MEDIA.ociConfig, config),
      layers: [layer],
      annotations: { ...annotations, 'module.wasm.image/variant': 'compat' },
    };
  }
  const manifestBytes = json(manifest);
  const manifestDesc = add(MEDIA.ociManifest, manifestBytes, { 'org.opencontainers.image.ref.name': version });
  const index = { schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests: [manifestDesc] };
  return { blobs, index, manifestDesc };
}

function main() {
  const o = args(process.argv.slice(2));
  const wasmPath = path.resolve(ROOT, o.wasm);
  if (!fs.existsSync(wasmPath)) {
    console.error(`${o.wasm} not found: run \`just wasm\` first`);
    process.exit(1);
  }
  const wasm = fs.readFileSync(wasmPath);
  const tag = o.tag ?? workspaceVersion();
  const { blobs, index, manifestDesc } = build({ wasm, compat: o.compat, version: tag });

  // The layout, as files (sorted, so the tar is deterministic too).
  const files = [
    { name: 'oci-layout', data: json({ imageLayoutVersion: '1.0.0' }) },
    { name: 'index.json', data: json(index) },
    ...[...blobs].map(([digest, data]) => ({ name: `blobs/sha256/${digest.slice(7)}`, data })),
  ].sort((a, b) => (a.name < b.name ? -1 : 1));

  const outDir = path.resolve(ROOT, o.out);
  const layoutDir = path.join(outDir, o.name);
  const tarPath = path.join(outDir, `${o.name}.tar`);
  fs.rmSync(layoutDir, { recursive: true, force: true });
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(layoutDir, f.name)), { recursive: true });
    fs.writeFileSync(path.join(layoutDir, f.name), f.data);
  }
  const dirs = [{ name: 'blobs', dir: true }, { name: 'blobs/sha256', dir: true }];
  fs.writeFileSync(tarPath, tar([...dirs, ...files].sort((a, b) => (a.name < b.name ? -1 : 1))));

  // Read both back independently; the module must come out unchanged.
  for (const src of [layoutDir, tarPath]) {
    const back = readOciLayout(src, { ref: tag });
    if (!back.wasm.equals(wasm) || back.manifestDigest !== manifestDesc.digest) {
      console.error(`${src}: read back differs from what was written`);
      process.exit(1);
    }
  }
  const rel = (p) => path.relative(process.cwd(), p) || '.';
  console.log(`oci image (${o.compat ? 'compat' : 'oci'} variant, ${wasm.length} byte module, tag ${tag}):`);
  console.log(`  layout   ${rel(layoutDir)}  (ref ${rel(layoutDir)}:${tag})`);
  console.log(`  tarball  ${rel(tarPath)}`);
  console.log(`  manifest ${manifestDesc.digest}`);
}

main();
