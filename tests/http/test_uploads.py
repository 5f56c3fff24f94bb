"""Uploads and binary answers, in-process (raypipe.testing runs the same FastAPI app and guard
as a Serve replica): multipart forms and raw bytes to the steps that accept them, each within
its own body limit; other media types 415; a step answering bytes of its own content type.
Through Serve's proxy: tests/runtime/test_uploads.py."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from raypipe.errors import ConfigFieldError
from raypipe.step_configs import check_config
from raypipe.testing import TestApp

APP = Path(__file__).resolve().parent.parent / "apps" / "uploads"
MB = 1 << 20


@pytest.fixture(scope="module")
def app() -> TestApp:
    with TestApp(APP) as running:
        yield running


def test_a_5_mb_upload_to_a_10_mb_step_arrives_whole(app: TestApp) -> None:
    data = os.urandom(5 * MB)
    r = app.client.post("/images", data={"caption": "cat", "copies": "2"},
                        files={"image": ("cat.png", data, "image/png")})
    assert r.status_code == 200, r.text
    assert r.json() == {"caption": "cat", "copies": 2, "files": [{
        "field": "image", "filename": "cat.png", "type": "image/png", "size": 5 * MB,
        "sha256": hashlib.sha256(data).hexdigest()}]}
    app.run_until_idle()
    assert app.state.get("uploads", "count") == {"files": 1}


def test_the_same_file_to_a_1_mb_step_is_413(app: TestApp) -> None:
    r = app.client.post("/small", files={"f": ("cat.png", os.urandom(5 * MB), "image/png")})
    assert r.status_code == 413 and str(MB) in r.text
    # Past the 10 MB step's own limit too; under it, the default step takes a small form.
    r = app.client.post("/images", data={"caption": "x"},
                        files={"f": ("big.bin", os.urandom(11 * MB), "image/png")})
    assert r.status_code == 413 and str(10 * MB) in r.text
    r = app.client.post("/small", files={"f": ("a.txt", b"hello", "text/plain")})
    assert r.status_code == 200 and r.json() == {"files": 1}


def test_form_fields_meet_the_body_schema(app: TestApp) -> None:
    r = app.client.post("/images", data={"copies": "two"},
                        files={"f": ("a.png", b"x", "image/png")})
    assert r.status_code == 422
    locs = {tuple(e["loc"]) for e in r.json()["detail"]}
    assert ("body", "caption") in locs and ("body", "copies") in locs
    # JSON is still taken, and validated as before.
    r = app.client.post("/images", json={"caption": "json"})
    assert r.status_code == 200 and r.json() == {"caption": "json", "files": []}


def test_raw_bytes_in_and_bytes_of_its_own_type_out(app: TestApp) -> None:
    data = os.urandom(3 * MB)
    for ctype in ("application/octet-stream", "image/jpeg"):
        r = app.client.post("/raw/x", content=data, headers={"content-type": ctype})
        assert r.status_code == 200, r.text
        assert r.content == data[::-1]
        assert r.headers["content-type"] == "application/x-reversed"
        assert r.headers["x-received-type"] == ctype


def test_a_media_type_the_step_does_not_take_is_415(app: TestApp) -> None:
    r = app.client.post("/raw/x", content=b"a,b\n1,2\n", headers={"content-type": "text/csv"})
    assert r.status_code == 415
    assert "application/octet-stream" in r.text and "image/*" in r.text
    # A JSON-only step still refuses a form (a cross-site form cannot reach its schema).
    r = app.client.post("/raw/x", data={"a": "b"})
    assert r.status_code == 415


def test_the_openapi_document_shows_what_each_step_takes(app: TestApp) -> None:
    paths = app.client.get("/openapi.json").json()["paths"]
    images = paths["/images"]["post"]["requestBody"]["content"]
    assert set(images) == {"application/json", "multipart/form-data"}
    raw = paths["/raw/{name}"]["post"]["requestBody"]["content"]
    assert raw["application/octet-stream"]["schema"] == {"type": "string", "format": "binary"}


@pytest.mark.parametrize("trigger,field", [
    ({"accepts": ["images"]}, "triggers[0].accepts[0]"),
    ({"maxBodyBytes": 0}, "triggers[0].maxBodyBytes"),
])
def test_upload_settings_are_checked(trigger: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigFieldError) as info:
        check_config({"name": "x", "triggers": [
            {"type": "http", "method": "POST", "path": "/x", **trigger}]})
    assert info.value.field == field
