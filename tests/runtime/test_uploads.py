"""Uploads through Serve's proxy and the ingress replica, on Ray: a 5 MB file to a step with a
10 MB limit arrives whole and its message is delivered; the same file to a 1 MB step is 413;
raw bytes come back as bytes of the step's content type."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import httpx

from tests.conftest import APPS, wait_for

MB = 1 << 20


def test_uploads_through_serve(deploy_app: Any) -> None:
    d = deploy_app(APPS / "uploads")
    data = os.urandom(5 * MB)
    with httpx.Client(base_url=d.url, timeout=60) as client:
        r = client.post("/images", data={"caption": "cat"},
                        files={"image": ("cat.png", data, "image/png")})
        assert r.status_code == 200, r.text
        [sent] = r.json()["files"]
        assert sent["size"] == 5 * MB and sent["sha256"] == hashlib.sha256(data).hexdigest()

        r = client.post("/small", files={"image": ("cat.png", data, "image/png")})
        assert r.status_code == 413

        r = client.post("/raw/x", content=data, headers={"content-type": "image/png"})
        assert r.status_code == 200 and r.content == data[::-1]
        assert r.headers["content-type"] == "application/x-reversed"

        def counted() -> Any:
            items = client.get("/_raypipe/api/state/uploads").json()
            return items == [{"id": "count", "data": {"files": 1}}]

        wait_for(counted, timeout=60, message="the upload's message delivered once")
