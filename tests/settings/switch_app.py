"""The one application used by the switch test: its code never names a backend.

Run as ``python switch_app.py API_URL``; settings come from N3XT_CREDS_SETTINGS and
the backend from N3XT_CREDS_SOURCE. Prints the client_id the API saw.
"""

from __future__ import annotations

import sys

import httpx

import n3xt_creds


def main() -> int:
    auth = n3xt_creds.from_settings()
    with httpx.Client(auth=auth) as client:
        answer = client.get(sys.argv[1])
    auth.close()
    answer.raise_for_status()
    print(answer.json()["client_id"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
