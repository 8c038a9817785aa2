"""Drives the real lakeFS Python SDK (lakefs + lakefs_sdk) for tests/e2e/lakefs.test.mjs.

Three modes, each ending with one SDK call as the logged-in user (AuthApi.get_current_user, GET /api/v1/user):

  web-identity  lakefs.client.from_web_identity(code, state, redirect_uri, ttl_seconds, host=HOST): the
                high-level client's STS login, exactly as lakeFS documents it (it keeps only the token)
  sdk-sts       the generated client's ExperimentalApi.sts_login(StsAuthRequest(...)) that from_web_identity
                wraps, to see the parsed AuthenticationToken (token, token_expiration) the SDK validated
  token         a client built with an access token the test made (forged, expired, foreign key)

Prints one JSON object on stdout and exits 0 when the user call succeeded:
  {"ok": true, "mode", "token", "token_expiration", "token_expiration_type", "user": {id, email, ...}}
or, when the SDK raised (exit 3):
  {"ok": false, "mode", "stage": "login"|"user", "exception": "<lakefs exception class>", "status": N, "body": ...}

  .venv-lakefs/bin/python tests/clients/lakefs_login.py --host http://127.0.0.1:8080 \
      --code CODE --state VERIFIER --redirect-uri http://127.0.0.1:53595/callback --ttl 600
"""

import argparse
import json
import sys

import lakefs
import lakefs_sdk
from lakefs.exceptions import LakeFSException, api_exception_handler


def fail(mode, stage, e):
    out = {"ok": False, "mode": mode, "stage": stage, "exception": type(e).__name__,
           "status": getattr(e, "status_code", None), "body": getattr(e, "body", None),
           "message": str(e)}
    print(json.dumps(out, default=str))
    sys.exit(3)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True, help="lakeFS endpoint (Envoy with Portcullis); /api/v1 is appended")
    p.add_argument("--mode", choices=["web-identity", "sdk-sts", "token"], default="web-identity")
    p.add_argument("--code")
    p.add_argument("--state")
    p.add_argument("--redirect-uri")
    p.add_argument("--ttl", type=int, default=3600)
    p.add_argument("--token")
    a = p.parse_args()

    token_expiration = None
    if a.mode == "web-identity":
        try:
            client = lakefs.client.from_web_identity(code=a.code, state=a.state, redirect_uri=a.redirect_uri,
                                                     ttl_seconds=a.ttl, host=a.host)
        except LakeFSException as e:
            fail(a.mode, "login", e)
        token = client.config.access_token
    elif a.mode == "sdk-sts":
        client = lakefs.Client(host=a.host)
        try:
            with api_exception_handler():
                auth = client.sdk_client.experimental_api.sts_login(lakefs_sdk.StsAuthRequest(
                    code=a.code, state=a.state, redirect_uri=a.redirect_uri, ttl_seconds=a.ttl))
        except LakeFSException as e:
            fail(a.mode, "login", e)
        token = auth.token
        token_expiration = auth.token_expiration
        client.config.access_token = token
    else:
        token = a.token
        client = lakefs.Client(host=a.host, access_token=token)

    try:
        with api_exception_handler():
            me = client.sdk_client.auth_api.get_current_user()
    except LakeFSException as e:
        fail(a.mode, "user", e)
    print(json.dumps({
        "ok": True,
        "mode": a.mode,
        "host": client.config.host,
        "token": token,
        "token_expiration": token_expiration,
        "token_expiration_type": type(token_expiration).__name__,
        "user": me.user.to_dict(),
    }))


if __name__ == "__main__":
    main()
