// Packaging for Istio and Envoy Gateway, checked without a cluster: the OCI image `just oci` builds is read
// back by an independent reader (tests/lib/oci.mjs, the fetchers' rules) and must give the module back byte
// for byte; the plugin configuration in envoy/istio/ and envoy/gateway/ goes, as the JSON string istiod and
// Envoy Gateway hand the filter, through the real filter's on_configure in real Envoy (`--mode validate`).
// Not exercised: istiod's and Envoy Gateway's translation, the image pull, a running mesh or gateway.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import YAML from 'yaml';

import { bootstrapYaml, envoyConfig, portcullisFilter, STATS_TAGS } from '../lib/envoy-config.mjs';
import { MEDIA, readOciLayout } from '../lib/oci.mjs';
import { ENVOY, ROOT, WASM } from '../lib/stack.mjs';

const RUN = path.join(ROOT, 'target/e2e/packaging');
fs.rmSync(RUN, { recursive: true, force: true });
fs.mkdirSync(RUN, { recursive: true });

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
const TEST_KEY = Buffer.alloc(32, 7).toString('base64'); // a valid 32-byte key, for validation only

function buildImage(...args) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/oci-image.mjs'), '--wasm', WASM, ...args], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  const digest = /manifest (sha256:[a-f0-9]{64})/.exec(r.stdout)?.[1];
  assert.ok(digest, `the script prints the manifest digest:\n${r.stdout}`);
  return digest;
}

/** Writes a layout by hand (not through the script) around `manifest`, its blobs given as Buffers. */
function handLayout(dir, manifest, blobs) {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'blobs/sha256'), { recursive: true });
  const m = Buffer.from(JSON.stringify(manifest));
  for (const b of [...blobs, m]) fs.writeFileSync(path.join(dir, 'blobs/sha256', sha256(b)), b);
  fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: MEDIA.ociManifest, digest: `sha256:${sha256(m)}`, size: m.length }],
  }));
}
const desc = (mediaType, b) => ({ mediaType, digest: `sha256:${sha256(b)}`, size: b.length });

describe('the OCI image (just oci)', () => {
  const wasm = fs.readFileSync(WASM);
  const layout = path.join(ROOT, 'target/oci/portcullis');
  const tarball = path.join(ROOT, 'target/oci/portcullis.tar');
  let digest;

  it('is the "oci" Wasm variant and gives the module back byte for byte, from the directory and the tar', () => {
    digest = buildImage();
    for (const src of [layout, tarball]) {
      const img = readOciLayout(src);
      assert.equal(img.variant, 'oci');
      assert.ok(img.wasm.equals(wasm), `${src}: the layer is target/portcullis.wasm`);
      assert.equal(img.manifestDigest, digest, 'the digest the script printed is the manifest read back');
      assert.equal(img.manifest.mediaType, MEDIA.ociManifest);
      assert.equal(img.manifest.config.mediaType, MEDIA.wasmConfig);
      assert.deepEqual(img.layers.map((l) => l.mediaType), [MEDIA.wasmConfig, MEDIA.wasmContent]);
      // Not only the reader's word: the wasm layer's descriptor is the module's own sha256 and size.
      const layer = img.layers[1];
      assert.equal(layer.digest, `sha256:${sha256(wasm)}`);
      assert.equal(layer.size, wasm.length);
      assert.equal(layer.annotations['org.opencontainers.image.title'], 'plugin.wasm');
      assert.equal(img.manifest.annotations['org.opencontainers.image.title'], 'portcullis');
      assert.equal(img.config.type, 'envoy_proxy');
      assert.ok(img.config.abiVersions.includes('0_2_1'), `ABI versions found in the module: ${img.config.abiVersions}`);
      assert.match(img.manifestDescriptor.annotations['org.opencontainers.image.ref.name'], /^\d+\.\d+\.\d+/);
    }
    // Every file in the directory is its own sha256 (recomputed here, apart from the reader).
    for (const f of fs.readdirSync(path.join(layout, 'blobs/sha256'))) {
      assert.equal(sha256(fs.readFileSync(path.join(layout, 'blobs/sha256', f))), f);
    }
  });

  it('is deterministic: the same module gives the same bytes', () => {
    const again = buildImage('--out', 'target/e2e/packaging/again');
    assert.equal(again, digest);
    assert.equal(sha256(fs.readFileSync(path.join(RUN, 'again/portcullis.tar'))), sha256(fs.readFileSync(tarball)));
  });

  it('--compat builds the "compat" variant (plugin.wasm in a tar+gzip layer)', () => {
    buildImage('--compat', '--out', 'target/e2e/packaging/compat');
    const img = readOciLayout(path.join(RUN, 'compat/portcullis-compat.tar'));
    assert.equal(img.variant, 'compat');
    assert.deepEqual(img.layers.map((l) => l.mediaType), [MEDIA.ociLayerTarGzip]);
    assert.equal(img.manifest.annotations['module.wasm.image/variant'], 'compat');
    assert.ok(img.wasm.equals(wasm));
  });

  it('the reader refuses a tampered blob, a wrong size, a tampered tar and a one-layer manifest', () => {
    // One byte of the module changed.
    const bad = path.join(RUN, 'tampered');
    fs.rmSync(bad, { recursive: true, force: true });
    fs.cpSync(layout, bad, { recursive: true });
    const blobFile = path.join(bad, 'blobs/sha256', sha256(wasm));
    const b = fs.readFileSync(blobFile);
    b[b.length >> 1] ^= 1;
    fs.writeFileSync(blobFile, b);
    assert.throws(() => readOciLayout(bad), /digest mismatch/);

    // Consistent digests, but the descriptor's size is a lie.
    const runtime = Buffer.from('{"type":"envoy_proxy"}');
    const lying = { ...desc(MEDIA.wasmContent, wasm), size: wasm.length - 1 };
    handLayout(path.join(RUN, 'size'), { schemaVersion: 2, mediaType: MEDIA.ociManifest, config: desc(MEDIA.wasmConfig, runtime), layers: [desc(MEDIA.wasmConfig, runtime), lying] }, [runtime, wasm]);
    assert.throws(() => readOciLayout(path.join(RUN, 'size')), new RegExp(`has ${wasm.length} bytes, descriptor says ${wasm.length - 1}`));

    // The same hand-made layout with the right size is accepted: the checks above are not refusing everything.
    handLayout(path.join(RUN, 'hand'), { schemaVersion: 2, mediaType: MEDIA.ociManifest, config: desc(MEDIA.wasmConfig, runtime), layers: [desc(MEDIA.wasmConfig, runtime), desc(MEDIA.wasmContent, wasm)] }, [runtime, wasm]);
    assert.ok(readOciLayout(path.join(RUN, 'hand')).wasm.equals(wasm));

    // A byte flipped inside the tar's copy of the module, and one in a tar header.
    const t = fs.readFileSync(tarball);
    const at = t.indexOf(wasm.subarray(4096, 4160));
    assert.ok(at > 0);
    const t1 = Buffer.from(t);
    t1[at] ^= 1;
    assert.throws(() => readOciLayout(t1), /digest mismatch/);
    const t2 = Buffer.from(t);
    t2[5] ^= 1;
    assert.throws(() => readOciLayout(t2), /checksum mismatch/);

    // The module as the single layer with the Wasm config as the manifest's config (`oras push --config`
    // style): Istio's and Envoy Gateway's fetchers say "number of layers must be 2 but got 1".
    handLayout(path.join(RUN, 'one-layer'), { schemaVersion: 2, mediaType: MEDIA.ociManifest, config: desc(MEDIA.wasmConfig, runtime), layers: [desc(MEDIA.wasmContent, wasm)] }, [runtime, wasm]);
    assert.throws(() => readOciLayout(path.join(RUN, 'one-layer')), /number of layers must be 2 but got 1/);
  });
});

/** Parses a manifest file; the YAML 1.1 reading (Kubernetes' YAML library) must agree with YAML 1.2's. */
function manifests(rel) {
  const text = fs.readFileSync(path.join(ROOT, rel), 'utf8');
  const docs = YAML.parseAllDocuments(text);
  for (const d of docs) assert.deepEqual(d.errors, [], `${rel}: ${d.errors}`);
  const v12 = docs.map((d) => d.toJS());
  const v11 = YAML.parseAllDocuments(text, { version: '1.1' }).map((d) => d.toJS());
  assert.deepEqual(v11, v12, `${rel} reads differently as YAML 1.1 (yes/no/on/off, octal, dates): quote those values`);
  return v12;
}
const one = (docs, kind) => {
  const found = docs.filter((d) => d.kind === kind);
  assert.equal(found.length, 1, `one ${kind}`);
  return found[0];
};

/**
 * The plugin configuration with its `<...>` placeholders filled: cookie key secrets get a valid 32-byte key,
 * other strings a test value. Returns the configuration and the paths it filled.
 */
function fillPlaceholders(config) {
  const filled = [];
  const walk = (v, at) => {
    if (Array.isArray(v)) return v.map((x, i) => walk(x, `${at}[${i}]`));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, at ? `${at}.${k}` : k)]));
    if (typeof v === 'string' && /^<.*>$/.test(v)) {
      filled.push(at);
      return /^cookie\.keys\[\d+\]\.secret$/.test(at) ? TEST_KEY : 'test-value-for-validation';
    }
    return v;
  };
  return { config: walk(config, ''), filled };
}

/** `envoy --mode validate` of the real filter with `plugin` (as the JSON string the control plane makes). */
function validate(name, plugin, extraCluster) {
  const cfg = envoyConfig({ filters: [portcullisFilter(WASM, plugin)] });
  cfg.static_resources.clusters.push(extraCluster);
  const file = path.join(RUN, `${name}.yaml`);
  fs.writeFileSync(file, bootstrapYaml(cfg));
  const r = spawnSync(ENVOY, ['--mode', 'validate', '-c', file, '--use-dynamic-base-id'], { encoding: 'utf8' });
  return { code: r.status, log: `${r.stdout}${r.stderr}` };
}

function validatesAndRefusesABrokenKey(name, plugin, cluster) {
  const ok = validate(name, plugin, cluster);
  assert.equal(ok.code, 0, `the filter's on_configure accepts the configuration:\n${ok.log.slice(-2000)}`);
  assert.doesNotMatch(ok.log, /Unable to create Wasm plugin|Failed to configure base Wasm plugin/);
  const broken = structuredClone(plugin);
  broken.cookie.keys[0].secret = 'not base64!';
  const no = validate(`${name}-broken`, broken, cluster);
  assert.notEqual(no.code, 0, 'a key that is not base64 is refused');
  assert.ok(no.log.includes('cookie.keys[0].secret'), `the log names the field:\n${no.log.slice(-1500)}`);
}

describe('Istio: envoy/istio/', () => {
  const [plugin] = manifests('envoy/istio/wasmplugin.yaml');
  const [se] = manifests('envoy/istio/serviceentry.yaml');
  const [dr] = manifests('envoy/istio/destinationrule.yaml');
  const cfg = plugin.spec.pluginConfig;
  // Istio's cluster name for a ServiceEntry port: outbound|<port>|<subset>|<host>.
  const m = /^outbound\|(\d+)\|\|([a-z0-9.-]+)$/.exec(cfg.idp_cluster);

  it('a WasmPlugin pulling an OCI image, fail-closed, on inbound traffic only', () => {
    assert.equal(plugin.apiVersion, 'extensions.istio.io/v1alpha1');
    assert.equal(plugin.kind, 'WasmPlugin');
    assert.match(plugin.spec.url, /^oci:\/\/[a-z0-9.-]+(:\d+)?\/[a-z0-9._/-]+(:[\w][\w.-]{0,127}|@sha256:[a-f0-9]{64})$/);
    assert.ok(['FAIL_CLOSE', 'FAIL_RELOAD'].includes(plugin.spec.failStrategy), `failStrategy ${plugin.spec.failStrategy}`);
    assert.deepEqual(plugin.spec.match, [{ mode: 'SERVER' }], 'not on the app\'s outbound calls (the default is CLIENT_AND_SERVER)');
    assert.equal(plugin.spec.phase, 'AUTHN');
  });

  it('the ServiceEntry and DestinationRule make the cluster idp_cluster names, with TLS to the issuer\'s host', () => {
    assert.ok(m, `idp_cluster ${cfg.idp_cluster} is an outbound|port||host name`);
    const [, port, host] = m;
    assert.equal(new URL(cfg.issuer).host, host, 'the issuer is on the ServiceEntry\'s host');
    assert.equal(se.kind, 'ServiceEntry');
    assert.ok(se.spec.hosts.includes(host));
    assert.ok(se.spec.ports.some((p) => p.number === Number(port)), `the ServiceEntry has port ${port}`);
    assert.equal(se.spec.location, 'MESH_EXTERNAL');
    assert.equal(se.spec.resolution, 'DNS');
    assert.equal(dr.kind, 'DestinationRule');
    assert.equal(dr.spec.host, host);
    assert.equal(dr.spec.trafficPolicy.tls.mode, 'SIMPLE');
    assert.ok(dr.spec.trafficPolicy.tls.subjectAltNames.includes(host), 'the IdP\'s certificate is checked for its name');
    assert.deepEqual(dr.spec.workloadSelector, plugin.spec.selector, 'the rule applies where the plugin runs');
  });

  it('pluginConfig passes the real filter\'s on_configure in Envoy; a broken key is refused', () => {
    const { config, filled } = fillPlaceholders(cfg);
    assert.deepEqual(filled, ['client_secret', 'cookie.keys[0].secret'], 'the placeholders known to this test');
    const [, port, host] = m;
    // A stand-in for the cluster istiod builds from the ServiceEntry and DestinationRule, under its name.
    const cluster = {
      name: cfg.idp_cluster,
      type: 'STRICT_DNS',
      connect_timeout: '5s',
      load_assignment: { cluster_name: cfg.idp_cluster, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: Number(port) } } } }] }] },
      transport_socket: {
        name: 'envoy.transport_sockets.tls',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
          sni: dr.spec.trafficPolicy.tls.sni,
          common_tls_context: {
            validation_context: {
              trusted_ca: { filename: '/etc/ssl/certs/ca-certificates.crt' },
              match_typed_subject_alt_names: dr.spec.trafficPolicy.tls.subjectAltNames.map((exact) => ({ san_type: 'DNS', matcher: { exact } })),
            },
          },
        },
      },
    };
    validatesAndRefusesABrokenKey('istio', config, cluster);
  });
});

describe('Envoy Gateway: envoy/gateway/envoyextensionpolicy.yaml', () => {
  const docs = manifests('envoy/gateway/envoyextensionpolicy.yaml');
  const policy = one(docs, 'EnvoyExtensionPolicy');
  const patch = one(docs, 'EnvoyPatchPolicy');
  const [wasm] = policy.spec.wasm;
  const added = patch.spec.jsonPatches.filter((p) => p.type === 'type.googleapis.com/envoy.config.cluster.v3.Cluster' && p.operation.op === 'add' && p.operation.path === '');

  it('an Image extension on an HTTPRoute, fail-closed', () => {
    assert.equal(policy.apiVersion, 'gateway.envoyproxy.io/v1alpha1');
    assert.equal(policy.spec.wasm.length, 1);
    assert.equal(policy.spec.targetRefs[0].kind, 'HTTPRoute');
    assert.equal(wasm.code.type, 'Image');
    // Envoy Gateway's image URL is registry/repository:tag (or @sha256:...), no scheme.
    assert.match(wasm.code.image.url, /^[a-z0-9.-]+(:\d+)?\/[a-z0-9._/-]+(:[\w][\w.-]{0,127}|@sha256:[a-f0-9]{64})$/);
    assert.strictEqual(wasm.failOpen, false, 'failOpen: false, spelled out');
    assert.equal(wasm.rootID, 'portcullis');
  });

  it('idp_cluster is the cluster the EnvoyPatchPolicy adds', () => {
    assert.equal(patch.spec.type, 'JSONPatch');
    assert.equal(added.length, 1, 'one cluster added with op add, path ""');
    assert.equal(added[0].operation.value.name, wasm.config.idp_cluster);
    assert.equal(added[0].name, wasm.config.idp_cluster);
    assert.equal(new URL(wasm.config.issuer).hostname, added[0].operation.value.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address);
  });

  it('config passes the real filter\'s on_configure in Envoy next to the patch\'s cluster; a broken key is refused', () => {
    const { config, filled } = fillPlaceholders(wasm.config);
    assert.deepEqual(filled, ['client_secret', 'cookie.keys[0].secret'], 'the placeholders known to this test');
    // The EnvoyPatchPolicy's cluster, verbatim: Envoy validates it too.
    validatesAndRefusesABrokenKey('gateway', config, added[0].operation.value);
  });
});

describe('the metric labels in a mesh: envoy/istio/stats-bootstrap.yaml, envoy/gateway/envoyproxy-stats.yaml', () => {
  const [cm] = manifests('envoy/istio/stats-bootstrap.yaml');
  const [ep] = manifests('envoy/gateway/envoyproxy-stats.yaml');
  const fragments = {
    istio: JSON.parse(cm.data['custom_bootstrap.json']),
    gateway: YAML.parse(ep.spec.bootstrap.value),
  };

  it('carry the stats_tags every tested bootstrap uses', () => {
    assert.equal(cm.kind, 'ConfigMap');
    assert.equal(ep.kind, 'EnvoyProxy');
    assert.equal(ep.spec.bootstrap.type, 'Merge');
    for (const [name, f] of Object.entries(fragments)) {
      assert.deepEqual(f, { stats_config: { stats_tags: STATS_TAGS } }, name);
    }
  });

  it('merge into a bootstrap Envoy accepts (the way the control planes merge them)', () => {
    const cfg = envoyConfig({ filters: [portcullisFilter(WASM, { issuer: 'http://127.0.0.1:1', idp_cluster: 'idp', client_id: 'c', cookie: { keys: [{ id: 'k', secret: TEST_KEY }] } })] });
    delete cfg.stats_config;
    const file = path.join(RUN, 'no-stats.yaml');
    fs.writeFileSync(file, bootstrapYaml(cfg));
    for (const [name, f] of Object.entries(fragments)) {
      const r = spawnSync(ENVOY, ['--mode', 'validate', '-c', file, '--config-yaml', JSON.stringify(f), '--use-dynamic-base-id'], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${name}: ${r.stdout}${r.stderr}`.slice(-1500));
    }
    // The control: a broken regex is refused, so the check can fail.
    const bad = { stats_config: { stats_tags: [{ tag_name: 'le', regex: '(' }] } };
    const r = spawnSync(ENVOY, ['--mode', 'validate', '-c', file, '--config-yaml', JSON.stringify(bad), '--use-dynamic-base-id'], { encoding: 'utf8' });
    assert.notEqual(r.status, 0, 'a broken tag regex is refused');
  });
});
