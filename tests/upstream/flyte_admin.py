"""A small Flyte admin for the end-to-end tests: flyteidl's own generated servicers, h2c on loopback.

It answers what flytekit needs to log in and list projects, the way flyteadmin (v1.16) does:
- AuthMetadataService/GetPublicClientConfig: the flytectl public client (flyteadmin's defaults) and
  `authorization_metadata_key` (flyteadmin's `grpcAuthorizationHeader`, default flyte-authorization).
- AuthMetadataService/GetOAuth2Metadata: like flyteadmin with an external authorization server, the IdP's
  discovery document fetched on every call and cut down to the message's fields.
- AdminService/ListProjects: two projects; the second, `whoami`, names the user the proxy in front said it
  authenticated (x-auth-request-user metadata) and carries every identity header it received as JSON in its
  description. Every call is counted, so a test can prove a refused call never arrived.
- AdminService/GetDomains: development, staging, production.
- --require-token: AdminService calls without a token header are answered UNAUTHENTICATED (what flyteadmin
  with auth on does; the token is not checked), to try a client's login against the IdP with no proxy.

A plain HTTP server on --stats-port reports the calls: GET /calls -> {"counts": {method: n}, "log": [...]},
DELETE /calls resets them. Tokens are never logged or reported, only which header carried one.

Run with the flytekit venv's python (it brings flyteidl and grpcio):
  .venv-flyte/bin/python tests/upstream/flyte_admin.py --port 8089 --stats-port 8090 --idp http://127.0.0.1:9000
"""

import argparse
import json
import sys
import threading
import urllib.request
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from flyteidl.admin import project_pb2
from flyteidl.service import admin_pb2_grpc, auth_pb2, auth_pb2_grpc

# What a proxy in front of the admin may send about the user (oauth2-proxy's and Portcullis's names).
IDENTITY_HEADERS = (
    "x-auth-request-user",
    "x-auth-request-email",
    "x-auth-request-groups",
    "x-auth-request-preferred-username",
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-groups",
)
TOKEN_HEADERS = ("flyte-authorization", "authorization")
METADATA_FIELDS = (
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "response_types_supported",
    "scopes_supported",
    "token_endpoint_auth_methods_supported",
    "jwks_uri",
    "code_challenge_methods_supported",
    "grant_types_supported",
    "device_authorization_endpoint",
)


class Calls:
    """Counts and a log of every RPC, shared by the gRPC workers and the stats server."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        with self._lock:
            self.counts = {}
            self.log = []

    def record(self, method, context):
        md = {k.lower(): v for k, v in context.invocation_metadata() if isinstance(v, str)}
        entry = {
            "method": method,
            "identity": {h: md[h] for h in IDENTITY_HEADERS if h in md},
            # Which header carried a token (never the token itself).
            "token_headers": [h for h in TOKEN_HEADERS if h in md],
        }
        with self._lock:
            self.counts[method] = self.counts.get(method, 0) + 1
            self.log.append(entry)
        return entry

    def snapshot(self):
        with self._lock:
            return {"counts": dict(self.counts), "log": list(self.log)}


class AdminService(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, calls, require_token):
        self.calls = calls
        self.require_token = require_token

    def _admit(self, entry, context):
        if self.require_token and not entry["token_headers"]:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "no token (flyte_admin --require-token)")

    def ListProjects(self, request, context):
        entry = self.calls.record("ListProjects", context)
        self._admit(entry, context)
        identity = entry["identity"]
        domains = [project_pb2.Domain(id=d, name=d) for d in ("development", "staging", "production")]
        return project_pb2.Projects(
            projects=[
                project_pb2.Project(id="flytesnacks", name="flytesnacks", domains=domains, description="Flyte examples"),
                project_pb2.Project(
                    id="whoami",
                    name=identity.get("x-auth-request-user", "anonymous"),
                    domains=domains,
                    description=json.dumps(identity, sort_keys=True),
                ),
            ]
        )

    def GetDomains(self, request, context):
        self._admit(self.calls.record("GetDomains", context), context)
        return project_pb2.GetDomainsResponse(
            domains=[project_pb2.Domain(id=d, name=d) for d in ("development", "staging", "production")]
        )


class AuthMetadataService(auth_pb2_grpc.AuthMetadataServiceServicer):
    def __init__(self, calls, args):
        self.calls = calls
        self.args = args

    def GetPublicClientConfig(self, request, context):
        self.calls.record("GetPublicClientConfig", context)
        a = self.args
        return auth_pb2.PublicClientAuthConfigResponse(
            client_id=a.client_id,
            redirect_uri=a.redirect_uri,
            scopes=a.scopes,
            authorization_metadata_key=a.metadata_key,
            audience=a.audience,
        )

    def GetOAuth2Metadata(self, request, context):
        self.calls.record("GetOAuth2Metadata", context)
        url = self.args.idp.rstrip("/") + "/.well-known/openid-configuration"
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                doc = json.load(r)
        except Exception as e:  # noqa: BLE001 (any failure is the same answer to the client)
            context.abort(grpc.StatusCode.INTERNAL, f"Failed to get oauth metadata: {e}")
        return auth_pb2.OAuth2MetadataResponse(**{f: doc[f] for f in METADATA_FIELDS if f in doc})


def stats_server(calls, port):
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status, body):
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self):
            if self.path == "/calls":
                self._reply(200, calls.snapshot())
            else:
                self._reply(404, {"error": "not found"})

        def do_DELETE(self):
            if self.path == "/calls":
                calls.reset()
                self._reply(200, {"reset": True})
            else:
                self._reply(404, {"error": "not found"})

        def log_message(self, *a):
            pass

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True, help="gRPC (h2c) port on 127.0.0.1")
    p.add_argument("--stats-port", type=int, required=True, help="HTTP port for GET/DELETE /calls")
    p.add_argument("--idp", required=True, help="the IdP's issuer URL (its discovery document is served)")
    p.add_argument("--client-id", default="flytectl")
    p.add_argument("--redirect-uri", default="http://localhost:53593/callback")
    p.add_argument("--scopes", default="all,offline", type=lambda s: [x for x in s.split(",") if x])
    p.add_argument("--metadata-key", default="flyte-authorization")
    p.add_argument("--audience", default="")
    p.add_argument("--require-token", action="store_true", help="refuse AdminService calls that carry no token")
    args = p.parse_args(argv)

    calls = Calls()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    admin_pb2_grpc.add_AdminServiceServicer_to_server(AdminService(calls, args.require_token), server)
    auth_pb2_grpc.add_AuthMetadataServiceServicer_to_server(AuthMetadataService(calls, args), server)
    if server.add_insecure_port(f"127.0.0.1:{args.port}") == 0:
        sys.exit(f"flyte_admin: cannot listen on 127.0.0.1:{args.port}")
    server.start()
    stats = stats_server(calls, args.stats_port)
    print(f"flyte admin stub: gRPC h2c on 127.0.0.1:{args.port}, calls on http://127.0.0.1:{args.stats_port}/calls", flush=True)
    try:
        stats.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop(0)


if __name__ == "__main__":
    main()
