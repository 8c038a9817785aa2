// One generator for every Envoy configuration the project runs: envoy/envoy.yaml (committed, checked
// against this), the demo, the end-to-end tests and the benchmark. Output is YAML.

export const DEMO = { listen: 8080, admin: 9901, upstream: 9100, idp: 9000 };
export const DEMO_KEY = 'ZGVtby1vbmx5LWtleS1kby1ub3QtdXNlLWluLXByb2Q='; // 32 bytes, demo only

/** The plugin configuration for a stack whose IdP listens on `idpPort`. */
export function pluginConfig({ idpPort = DEMO.idp, overrides = {} } = {}) {
  return {
    issuer: `http://127.0.0.1:${idpPort}`,
    idp_cluster: 'idp',
    client_id: 'portcullis',
    client_secret: 'portcullis-secret',
    cookie: { keys: [{ id: 'demo1', secret: DEMO_KEY }] },
    public_paths: ['/public/*'],
    ...overrides,
  };
}

const wasmFilter = (name, filename, configuration) => ({
  name,
  typed_config: {
    '@type': 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm',
    config: {
      name,
      root_id: name,
      vm_config: { vm_id: name, runtime: 'envoy.wasm.runtime.v8', code: { local: { filename } } },
      configuration: { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: configuration },
      // Second line of defence: should a VM ever fail (it is not meant to: no panics), Envoy replaces it
      // with a fresh one instead of answering 503 on that worker until a restart. Never FAIL_OPEN: that
      // would forward requests unauthenticated.
      failure_policy: 'FAIL_RELOAD',
      // Pausing in on_http_request_headers is a real StopIteration (Envoy >= 1.35): the body is then
      // still delivered to the filter (the back-channel logout endpoint reads its logout token there),
      // and nothing reaches the upstream until the filter decides. Without it, proxy-wasm turns a
      // pause into StopAllIteration and a body-reading endpoint would hang.
      allow_on_headers_stop_iteration: true,
    },
  },
});

/** The Portcullis HTTP filter entry. */
export function portcullisFilter(wasmPath, plugin) {
  return wasmFilter('portcullis', wasmPath, JSON.stringify(plugin));
}

/** A wasm filter that does nothing (the floor cost of running wasm at all). */
export function noopFilter(wasmPath) {
  return wasmFilter('noop', wasmPath, '{}');
}

/** Envoy's native oauth2 filter against the same IdP (benchmark baseline). */
export function nativeOauth2Filter(idpPort) {
  return {
    name: 'envoy.filters.http.oauth2',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.oauth2.v3.OAuth2',
      config: {
        token_endpoint: { cluster: 'idp', uri: `http://127.0.0.1:${idpPort}/token`, timeout: '5s' },
        authorization_endpoint: `http://127.0.0.1:${idpPort}/auth`,
        redirect_uri: '%REQ(x-forwarded-proto)%://%REQ(:authority)%/callback',
        redirect_path_matcher: { path: { exact: '/callback' } },
        signout_path: { path: { exact: '/signout' } },
        credentials: { client_id: 'envoy-oauth2', token_secret: { name: 'oauth2-token' }, hmac_secret: { name: 'oauth2-hmac' } },
        auth_scopes: ['openid', 'email', 'profile'],
        auth_type: 'URL_ENCODED_BODY',
      },
    },
  };
}

/**
 * Envoy's `stats_config.stats_tags` for the filter's metrics. The proxy-wasm ABI has no labels, so the
 * filter spells each label as `.<name>.<value>` in the stat name (`oauth2_proxy_requests_total.code.200`)
 * and these regexes turn them into Prometheus labels (`oauth2_proxy_requests_total{code="200"}`): the
 * first capture group is cut from the name, the second is the label's value. `le` comes last in a name
 * and its values hold dots (`0.005`), so it is anchored at the end.
 */
export const STATS_TAGS = [
  { tag_name: 'le', regex: '^wasmcustom\\..*(\\.le\\.([0-9.]+|\\+Inf))$' },
  ...['code', 'method', 'reason', 'rule', 'requirement', 'endpoint', 'outcome'].map((tag) => ({
    tag_name: tag,
    regex: `^wasmcustom\\.(?:oauth2_proxy|portcullis)_[a-z_]+(?:\\.[a-z]+\\.[^.]+)*?(\\.${tag}\\.([A-Za-z0-9_+-]+))`,
  })),
];

const cluster = (name, port, http2 = false, idleTimeout = null) => ({
  name,
  type: 'STATIC',
  connect_timeout: '2s',
  // A gRPC upstream (the Flyte admin stub) speaks HTTP/2 only. `idleTimeout`: pooled connections are
  // closed by Envoy first (the IdP's callouts are never retried: one sent on a connection the IdP or
  // its load balancer is closing at that moment would fail).
  ...(http2 || idleTimeout ? {
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        ...(idleTimeout ? { common_http_protocol_options: { idle_timeout: idleTimeout } } : {}),
        explicit_http_config: http2 ? { http2_protocol_options: {} } : { http_protocol_options: {} },
      },
    },
  } : {}),
  load_assignment: {
    cluster_name: name,
    endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }],
  },
});

/**
 * A full bootstrap: one listener on `listen`, every route to the `upstream` cluster (or a direct 200 when
 * `direct` is set, for the benchmark), the `idp` cluster, and the given HTTP filters before the router.
 * `upstreamHttp2`: the upstream speaks HTTP/2 only (gRPC); downstream, the listener takes both.
 */
export function envoyConfig({ listen = DEMO.listen, admin = DEMO.admin, upstream = DEMO.upstream, idp = DEMO.idp, filters = [], direct = false, secrets = [], upstreamHttp2 = false }) {
  const route = direct
    ? { match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'ok\n' } } }
    : { match: { prefix: '/' }, route: { cluster: 'upstream' } };
  return {
    stats_config: { stats_tags: STATS_TAGS },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: admin } } },
    static_resources: {
      listeners: [{
        name: 'main',
        address: { socket_address: { address: '127.0.0.1', port_value: listen } },
        filter_chains: [{
          filters: [{
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
              stat_prefix: 'ingress',
              route_config: { name: 'local', virtual_hosts: [{ name: 'app', domains: ['*'], routes: [route] }] },
              http_filters: [
                ...filters,
                { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
              ],
            },
          }],
        }],
      }],
      // 4 s: below the 5 s Node (and so many IdPs' stacks) keeps an idle connection, and well below
      // the 60 s of most load balancers.
      clusters: [cluster('upstream', upstream, upstreamHttp2), cluster('idp', idp, false, '4s')],
      ...(secrets.length ? { secrets } : {}),
    },
  };
}

/** Minimal YAML emitter for plain data (maps, lists, strings, numbers, booleans). */
export function toYaml(value, indent = '') {
  const scalar = (v) => {
    if (typeof v === 'string') {
      return /^[A-Za-z0-9_./%-][A-Za-z0-9_./%: -]*$/.test(v) && !/^(true|false|null|yes|no|on|off|~|[0-9.]+)$/i.test(v) && !v.endsWith(' ') && !v.includes(': ')
        ? v : JSON.stringify(v);
    }
    return String(v);
  };
  if (Array.isArray(value)) {
    if (value.length === 0) return ' []';
    return value.map((v) => {
      if (v !== null && typeof v === 'object') {
        const inner = toYaml(v, `${indent}  `).replace(/^\n\s*/, '');
        return `\n${indent}- ${inner}`;
      }
      return `\n${indent}- ${scalar(v)}`;
    }).join('');
  }
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value);
    if (keys.length === 0) return ' {}';
    return keys.map((k) => {
      const v = value[k];
      const key = /^[A-Za-z0-9_]+$/.test(k) ? k : JSON.stringify(k);
      return v !== null && typeof v === 'object' ? `\n${indent}${key}:${toYaml(v, `${indent}  `)}` : `\n${indent}${key}: ${scalar(v)}`;
    }).join('');
  }
  return ` ${scalar(value)}`;
}

export function bootstrapYaml(cfg) {
  return `${toYaml(cfg).replace(/^\n/, '')}\n`;
}
