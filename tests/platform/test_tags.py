"""``tag get|set|ls`` through the three faces: Python service layer, CLI, HTTP."""

import json

import pytest

from localtailr import NotFoundError, PermissionError, User
from localtailr.platform import tags
from localtailr.platform.context import context


def test_tags_service_layer(localtailr_home):
    tags.set(context(), "team", "data")
    assert tags.get(context(), "team") == "data"
    assert tags.ls(context(), "te") == [{"name": "team", "value": "data"}]
    with pytest.raises(NotFoundError):
        tags.get(context(), "missing")
    User.add("bob")
    with pytest.raises(PermissionError, match="'bob' lacks ADMIN"):
        tags.set(context(user="bob"), "team", "other")
    assert tags.get(context(user="bob"), "team") == "data"
    with pytest.raises(ValueError, match="invalid tag"):
        tags.set(context(), "", "x")


def test_tags_cli_and_api(cli, localtailr_home):
    assert cli("tag", "set", "region", "eu").returncode == 0
    assert cli("tag", "get", "region").stdout.strip() == "eu"
    assert json.loads(cli("tag", "ls", "--json").stdout) == [{"name": "region", "value": "eu"}]
    from localtailr.web.app import create_app

    app = create_app(localtailr_home.home)
    token = (localtailr_home.root / "token").read_text().strip()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    got = client.get("/api/tag/get?name=region", headers=headers, base_url="http://127.0.0.1")
    assert got.status_code == 200, got.get_data(as_text=True)
    assert got.get_json() == {"name": "region", "value": "eu"}
    assert client.get("/api/tag/get?name=nope", headers=headers,
                      base_url="http://127.0.0.1").status_code == 404
