"""Schemathesis hooks for sessiond: authenticate every request as a system_admin, so that
the authenticated and the /admin routes are exercised beyond 401.

Schemathesis learns values from responses (the caller's e-mail from GET /users/me, its id
from /sessions/current) and replays them: it throttles the caller's account with wrong
passwords (429, as it should), demotes it, ends its sessions. So each token belongs to a
fresh system_admin, created by the bootstrap admin (whose e-mail the fuzzer never sees);
a 401 makes schemathesis fetch a new one.
"""

import os
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
        bootstrap = login(os.environ["SESSIOND_ADMIN_EMAIL"], os.environ["SESSIOND_ADMIN_PASSWORD"])
        email = f"fuzz-{uuid.uuid4().hex}@example.com"
        password = f"pw-{uuid.uuid4().hex}"
        created = requests.post(
            f"{BASE}/api/v1/admin/users",
            json={"email": email, "password": password, "role": "system_admin"},
            headers={"Authorization": f"Bearer {bootstrap}"},
            timeout=10,
        )
        created.raise_for_status()
        return login(email, password)

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
