#!/usr/bin/env python3
"""The "browser" flytekit opens for its PKCE login (BROWSER=<this file>; Python's webbrowser runs it as
`<this file> <authorize URL>`).

Python's webbrowser waits for the browser process to exit, and flytekit only starts accepting the redirect
to its loopback callback server after that (flytekit/clients/auth/auth_client.py: open the browser, then
`server.handle_request()`). So this script does not log in itself: it hands the URL to the test
(POST to $FLYTE_BROWSER_INBOX) and exits at once. The test then logs in at the IdP over HTTP and GETs the
callback URL, as a browser would. Standard library only, so any python3 runs it.
"""

import os
import sys
import urllib.request


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: flyte_browser.py <url>")
    inbox = os.environ.get("FLYTE_BROWSER_INBOX")
    if not inbox:
        sys.exit("flyte_browser.py: FLYTE_BROWSER_INBOX is not set")
    req = urllib.request.Request(inbox, data=sys.argv[1].encode(), method="POST", headers={"content-type": "text/plain"})
    with urllib.request.urlopen(req, timeout=10) as r:
        if r.status != 200:
            sys.exit(f"flyte_browser.py: inbox answered {r.status}")


if __name__ == "__main__":
    main()
