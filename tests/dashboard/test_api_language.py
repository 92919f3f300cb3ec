"""API messages in the language of the request: the same refusals in Chinese for a Chinese
Accept-Language, byte-identical English otherwise; machine-readable parts never translated."""

from __future__ import annotations

import re
from typing import Any

import pytest

from dashboard.app import create_app
from dashboard.errors import FIELD_WORDS
from kernel.i18n import Said, say
from tests.support.dashboard import PASSWORD, SECRET, login

pytestmark = pytest.mark.anyio

TOKEN_URL = "/api/v1/auth/token"
ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}
EN = {"Accept-Language": "en-GB,en;q=0.9"}
# Latin words a Chinese message may keep: data (usernames, site ids), and these terms.
ALLOWED = {"SOS", "ID", "JSON", "URL"}


def untranslated(text: str) -> set[str]:
    """Latin words of `text` that are not data quoted in it nor allowed terms."""
    unquoted = re.sub(r"'[^']*'|“[^”]*”", "", text)
    return {w for w in re.findall(r"[A-Za-z]{2,}", unquoted) if w not in ALLOWED}


def chinese(text: str) -> bool:
    return re.search(r"[\u4e00-\u9fff]", text) is not None and not untranslated(text)


async def test_a_bad_login_and_the_lockout_are_said_in_chinese(client, world):
    bad = {"username": "duty-north", "password": "wrong password"}
    english = await client.post(TOKEN_URL, data=bad, headers=EN)
    assert english.status_code == 401
    assert english.json() == {"detail": "Incorrect username or password"}
    for _ in range(4):
        resp = await client.post(TOKEN_URL, data=bad, headers=ZH)
        assert resp.status_code == 401
        assert resp.json()["detail"] == "用户名或密码不正确"
        assert resp.headers["WWW-Authenticate"] == "Bearer"
    locked = await client.post(TOKEN_URL, headers=ZH,
                               data={"username": "duty-north", "password": PASSWORD})
    assert locked.status_code == 429
    assert locked.json()["detail"] == ("登录失败次数过多，请 15 分钟后重试，或请管理员重置密码")
    assert locked.headers["Retry-After"]
    english = await client.post(TOKEN_URL, headers=EN,
                                data={"username": "duty-north", "password": PASSWORD})
    assert english.json()["detail"] == ("Too many failed logins; try again in 15 minutes, "
                                        "or ask an administrator to reset your password")


async def test_a_missing_thing_is_a_chinese_404(client, world):
    auth = await login(client, "care-north")
    resp = await client.get("/api/v1/alerts/999999", headers={**auth, **ZH})
    assert resp.status_code == 404
    assert resp.json()["detail"] == "未找到告警"
    english = await client.get("/api/v1/alerts/999999", headers={**auth, **EN})
    assert english.json()["detail"] == "Alert not found"
    unknown_route = await client.get("/api/v1/no-such-thing", headers=ZH)
    assert (unknown_route.status_code, unknown_route.json()["detail"]) == (404, "未找到")


async def test_a_conflict_is_a_chinese_409(client, world):
    auth = await login(client, "duty-north")
    ack = f"/api/v1/alerts/{world.sos_alice}/ack"
    assert (await client.post(ack, headers=auth)).status_code == 200
    again = await client.post(ack, headers={**auth, **ZH})
    assert again.status_code == 409
    assert again.json()["status"] == "acknowledged"  # machine-readable: as it was
    assert re.fullmatch(r"您已于 \d\d:\d\d 确认此告警", again.json()["detail"]), again.json()
    other = await login(client, "care-north")
    finished = await client.post(f"/api/v1/alerts/{world.fall_bob}/ack",
                                 headers={**other, **ZH})
    assert finished.status_code == 409
    by = finished.json()["by"]  # a name: data, not translated
    assert finished.json()["detail"] == f"已由 {by} 处置完成", finished.json()


async def test_a_field_level_422_is_chinese_with_its_machine_parts_untouched(client, world):
    auth = await login(client, "admin")
    body = {"username": "new-carer", "full_name": "New Carer", "role": "care_worker",
            "site_id": "north", "password": "short"}
    english = await client.post("/api/v1/users", json=body, headers={**auth, **EN})
    resp = await client.post("/api/v1/users", json=body, headers={**auth, **ZH})
    assert english.status_code == resp.status_code == 422
    [en_error], [zh_error] = english.json()["errors"], resp.json()["errors"]
    assert zh_error["loc"] == en_error["loc"] and zh_error["type"] == en_error["type"]
    assert chinese(zh_error["msg"]) and chinese(resp.json()["detail"]), resp.json()
    assert "password" in en_error["msg"]
    invalid = {"role": "care_worker", "site_id": "North Site!"}
    refused = await client.post("/api/v1/users", json=invalid, headers={**auth, **ZH})
    assert refused.status_code == 422
    assert refused.json()["detail"].startswith("请求无效：")
    assert {e["type"] for e in refused.json()["errors"]} >= {"missing"}
    assert any(e["msg"].endswith("必填") for e in refused.json()["errors"]), refused.json()


async def test_a_forbidden_route_is_a_chinese_403(client, world):
    auth = await login(client, "family-alice")
    resp = await client.get("/api/v1/audit", headers={**auth, **ZH})
    assert resp.status_code == 403
    assert chinese(resp.json()["detail"]), resp.json()


def test_a_said_sentence_is_english_and_translates_its_template_and_marked_values():
    sentence = Said("{what} not found", what=Said("Alert"))
    assert sentence == "Alert not found"
    assert say(sentence, "zh-CN") == "未找到告警"
    assert say(sentence, "en") == "Alert not found"
    assert say("Incorrect username or password", "zh-CN") == "用户名或密码不正确"
    assert say("not a marked text", "zh-CN") == "not a marked text"


def _request_fields(schema: dict[str, Any]) -> set[str]:
    """Every parameter and request-body field name of the OpenAPI document."""
    names: set[str] = set()
    schemas = schema["components"]["schemas"]
    todo: list[str] = []
    for operations in schema["paths"].values():
        for operation in operations.values():
            names.update(p["name"] for p in operation.get("parameters", []))
            for content in operation.get("requestBody", {}).get("content", {}).values():
                todo += re.findall(r"#/components/schemas/([^\"']+)", str(content["schema"]))
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for field, spec in schemas[name].get("properties", {}).items():
            names.add(field)
            todo += re.findall(r"#/components/schemas/([^\"']+)", str(spec))
    return names


def test_every_field_of_the_api_has_words() -> None:
    schema = create_app("postgresql://unused/unused", SECRET).openapi()
    missing = _request_fields(schema) - set(FIELD_WORDS)
    assert not missing, f"add these fields to dashboard.errors.FIELD_WORDS: {missing}"
    assert all(words == name.replace("_", " ") for name, words in FIELD_WORDS.items())


def test_a_validators_sentence_with_values_is_said_in_the_readers_language():
    from pydantic import ValidationError

    from dashboard.actions import ResolveIn
    from dashboard.errors import readable

    with pytest.raises(ValidationError) as refused:
        ResolveIn(outcome="false_alarm", note="a\x01b")
    [error] = refused.value.errors()
    error = {**error, "loc": ("body", *error["loc"])}
    assert readable(error)["msg"] == ("note: this text must not contain the control or "
                                      "invalid character U+0001 (at position 1)")
    assert readable(error, "zh-CN")["msg"] == (
        "备注：此文本不能包含控制字符或无效字符 U+0001（位置 1）")


def test_an_api_value_inside_a_sentence_keeps_its_english_and_reads_as_its_label():
    from kernel.accounts import role_word

    sentence = Said("a {role} needs a site", role=role_word("care_worker"))
    assert sentence == "a care_worker needs a site"  # English as the API always said it
    assert say(sentence, "zh-CN") == "护理员账号需要指定站点"
