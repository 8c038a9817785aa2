"""Lists Flyte projects the way a user of flytekit does, and prints one JSON line with the outcome.

  flyte_projects.py --config config.yaml
      flytekit itself: `Config.auto(config_file=...)` (a flytectl-style YAML: admin.endpoint, admin.insecure,
      admin.authType Pkce | ClientSecret | ExternalCommand, admin.clientId, admin.clientSecretLocation,
      admin.command) and `SynchronousFlyteClient.list_projects_paginated()`: every auth step (metadata RPCs,
      browser or client credentials, the retry on UNAUTHENTICATED) is flytekit's own code.
  flyte_projects.py --raw localhost:8080 [--header NAME --token TOKEN] [--metadata k=v ...] [--rpc NAME]
      one bare gRPC call with flyteidl's stub and nothing of flytekit's auth: to show what the proxy does with
      no token, a bad one, or a spoofed identity header.

Output (stdout, last line): {"ok": true, "projects": [{"id", "name", "description"}...]} or
{"ok": false, "error": <exception class>, "grpc_code": "UNAUTHENTICATED", "details": ...}; exit 0 / 1.
Set PYTHON_KEYRING_BACKEND=keyring.backends.null.Keyring so no token is read from or left in a keyring.
"""

import argparse
import json
import sys

import grpc


def grpc_cause(e):
    """The grpc.RpcError behind a flytekit exception (flytekit raises `FlyteXxxException() from e`)."""
    while e is not None:
        if isinstance(e, grpc.RpcError) and hasattr(e, "code"):
            return e
        e = e.__cause__
    return None


def failure(e):
    rpc = grpc_cause(e)
    return {
        "ok": False,
        "error": type(e).__name__,
        "grpc_code": rpc.code().name if rpc else None,
        "details": (rpc.details() if rpc else str(e))[:500],
    }


def with_flytekit(config_file):
    from flytekit.clients.friendly import SynchronousFlyteClient
    from flytekit.configuration import Config

    cfg = Config.auto(config_file=config_file)
    client = SynchronousFlyteClient(cfg.platform)
    projects, _token = client.list_projects_paginated(limit=10)
    return [{"id": p.id, "name": p.name, "description": p.description} for p in projects]


def raw_call(endpoint, metadata, rpc):
    from flyteidl.admin import project_pb2
    from flyteidl.service import admin_pb2_grpc, auth_pb2, auth_pb2_grpc

    with grpc.insecure_channel(endpoint) as channel:
        if rpc == "ListProjects":
            r = admin_pb2_grpc.AdminServiceStub(channel).ListProjects(
                project_pb2.ProjectListRequest(limit=10), metadata=metadata, timeout=10
            )
            return [{"id": p.id, "name": p.name, "description": p.description} for p in r.projects]
        stub = auth_pb2_grpc.AuthMetadataServiceStub(channel)
        if rpc == "GetPublicClientConfig":
            r = stub.GetPublicClientConfig(auth_pb2.PublicClientAuthConfigRequest(), metadata=metadata, timeout=10)
        elif rpc == "GetOAuth2Metadata":
            r = stub.GetOAuth2Metadata(auth_pb2.OAuth2MetadataRequest(), metadata=metadata, timeout=10)
        else:
            raise SystemExit(f"unknown --rpc {rpc}")
        from google.protobuf.json_format import MessageToDict

        return MessageToDict(r, preserving_proto_field_name=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--config", help="a flytekit/flytectl YAML config file")
    g.add_argument("--raw", metavar="HOST:PORT", help="one bare gRPC call, no flytekit auth")
    p.add_argument("--header", default="flyte-authorization", help="(--raw) metadata key for --token")
    p.add_argument("--token", help="(--raw) sent as '<header>: Bearer <token>'")
    p.add_argument("--metadata", action="append", default=[], help="(--raw) extra metadata k=v")
    p.add_argument("--rpc", default="ListProjects", help="(--raw) ListProjects | GetPublicClientConfig | GetOAuth2Metadata")
    a = p.parse_args(argv)
    try:
        if a.config:
            out = {"ok": True, "projects": with_flytekit(a.config)}
        else:
            md = [tuple(kv.split("=", 1)) for kv in a.metadata]
            if a.token is not None:
                md.append((a.header, f"Bearer {a.token}"))
            result = raw_call(a.raw, md, a.rpc)
            out = {"ok": True, "projects": result} if a.rpc == "ListProjects" else {"ok": True, "response": result}
    except Exception as e:  # noqa: BLE001 (reported, the test asserts on it)
        out = failure(e)
    print(json.dumps(out), flush=True)
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
