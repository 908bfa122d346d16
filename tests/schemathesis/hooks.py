"""Schemathesis hooks for sessiond: authenticate every request as a system_admin, so that
the authenticated and the /admin routes are exercised beyond 401.

Schemathesis learns values from responses (the caller's e-mail from GET /users/me, its id
from /sessions/current, every account from GET /admin/users) and replays them: it throttles
the accounts it finds with wrong passwords (429, as it should), demotes and disables them,
ends their sessions. So each token belongs to a fresh system_admin, created from the command
line (`sessiond user create`, on the fuzzed server's database): no account the fuzzer can
reach is needed to make the next one. A 401 makes schemathesis fetch a new one.
"""

import os
import subprocess
import uuid

import requests
import schemathesis

BASE = os.environ.get("SESSIOND_FUZZ_BASE_URL", "")


def login(email, password):
    response = requests.post(
        f"{BASE}/api/v1/auth/login",
        json={"email": email, "password": password, "device_name": "schemathesis"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["access_token"]


@schemathesis.auth(refresh_interval=120, retry_on=[401])
class SessiondAdmin:
    def get(self, case, ctx):
        email = f"fuzz-{uuid.uuid4().hex}@example.com"
        password = f"pw-{uuid.uuid4().hex}"
        subprocess.run(
            [os.environ["SESSIOND_FUZZ_BINARY"], "user", "create", "--email", email,
             "--role", "system_admin"],
            env={**os.environ, "SESSIOND_PASSWORD": password},
            check=True,
            capture_output=True,
            timeout=60,
        )
        return login(email, password)

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
