"""The language of pages and API answers: the person's choice, else their browser's."""

from __future__ import annotations

import json
import re

import psycopg
import pytest

from tests.support.dashboard import PASSWORD, login

pytestmark = pytest.mark.anyio

ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}


def page_language(html: str) -> str:
    found = re.search(r'<html lang="([^"]+)">', html)
    assert found is not None
    return found.group(1)


def embedded(html: str, block: str) -> dict:
    found = re.search(rf'<script id="{block}" type="application/json">(.*?)</script>', html,
                      re.S)
    assert found is not None, block
    return json.loads(found.group(1))


async def test_a_page_follows_the_browser_then_the_cookie(client, world):
    english = await client.get("/")
    assert page_language(english.text) == "en"
    assert embedded(english.text, "catalog") == {}
    chinese = await client.get("/", headers=ZH)
    assert page_language(chinese.text) == "zh-CN"
    assert chinese.headers["content-language"] == "zh-CN"
    assert embedded(chinese.text, "vocabulary")["lang"] == "zh-CN"
    assert "退出登录" in chinese.text  # the template's own text ("Log out")
    assert embedded(chinese.text, "catalog")  # the scripts' texts in Chinese
    chosen = await client.get("/", headers=ZH, cookies={"eldercare_lang": "en"})
    assert page_language(chosen.text) == "en"
    nonsense = await client.get("/", headers=ZH, cookies={"eldercare_lang": "<script>"})
    assert page_language(nonsense.text) == "zh-CN"


async def test_someone_who_never_chose_follows_their_browser_at_login(client, world,
                                                                       clean_db):
    resp = await client.post("/api/v1/auth/token", headers=ZH,
                             data={"username": "family-alice", "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    assert (resp.json()["language"], resp.json()["language_chosen"]) == ("zh-CN", False)
    with psycopg.connect(clean_db) as conn:  # their notifications now come in Chinese
        row = conn.execute("SELECT language FROM users WHERE username = 'family-alice'"
                           ).fetchone()
    assert row == ("zh-CN",)


async def test_a_chosen_language_wins_over_the_browser(client, world):
    headers = await login(client, "care-north")
    resp = await client.put("/api/v1/me/language", json={"language": "zh-CN"},
                            headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["language"] == "zh-CN" and resp.json()["chosen"] is True
    assert [t["label"] for t in resp.json()["languages"]] == ["English", "简体中文"]
    again = await client.post("/api/v1/auth/token", headers={"Accept-Language": "en-GB"},
                              data={"username": "care-north", "password": PASSWORD})
    assert (again.json()["language"], again.json()["language_chosen"]) == ("zh-CN", True)
    back = await client.put("/api/v1/me/language", json={"language": None},
                            headers={**headers, "Accept-Language": "en-GB"})
    assert (back.json()["language"], back.json()["chosen"]) == ("en", False)
    got = await client.get("/api/v1/me/language", headers=headers)
    assert (got.json()["language"], got.json()["chosen"]) == ("en", False)


async def test_an_unknown_language_is_a_field_level_422(client, world):
    resp = await client.put("/api/v1/me/language", json={"language": "fr"},
                            headers=await login(client, "care-north"))
    assert resp.status_code == 422
    assert "language" in resp.text
