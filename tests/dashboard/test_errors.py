"""Refused input reaches people as field-level messages in plain words (issue 13): every 422
of request validation, and the refusals found after it (password policy, taken login name),
carry `errors` of {loc, type, msg}, msg naming the field and what is allowed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dashboard.app import create_app
from dashboard.errors import PATTERN_WORDS, TYPE_WORDS, readable
from tests.support.dashboard import SECRET, login

pytestmark = pytest.mark.anyio

# pydantic's own wording, written for programmers: never shown to people.
PYDANTIC_WORDS = ("should", "pattern", "Input", "Value error", "Field required", "[^", "^[")


def _patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from _patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from _patterns(value)


def test_every_pattern_of_the_api_has_words() -> None:
    schema = create_app("postgresql://unused/unused", SECRET).openapi()
    missing = set(_patterns(schema)) - set(PATTERN_WORDS)
    assert not missing, f"add these patterns to dashboard.errors.PATTERN_WORDS: {missing}"


@pytest.mark.parametrize("error", [
    {"loc": ("body", "phone"), "type": "string_pattern_mismatch", "msg": "String should match "
     "pattern '^[0-9+() .-]*$'", "ctx": {"pattern": "^[0-9+() .-]*$"}},
    {"loc": ("body", "birth_year"), "type": "greater_than_equal",
     "msg": "Input should be greater than or equal to 1880", "ctx": {"ge": 1880}},
    {"loc": ("body", "full_name"), "type": "string_too_short",
     "msg": "String should have at least 1 character", "ctx": {"min_length": 1}},
    {"loc": ("body", "role"), "type": "enum", "msg": "Input should be 'a' or 'b'",
     "ctx": {"expected": "'a' or 'b'"}},
    {"loc": ("body", "site_id"), "type": "missing", "msg": "Field required"},
    {"loc": ("body", "contacts", 0, "phone"), "type": "value_error",
     "msg": "Value error, not a phone number", "ctx": {"error": "not a phone number"}},
    {"loc": ("query", "limit"), "type": "int_parsing",
     "msg": "Input should be a valid integer, unable to parse string as an integer"},
])
def test_pydantic_errors_become_plain_words_naming_the_field(error: dict[str, Any]) -> None:
    out = readable(error)
    assert out["loc"] == list(error["loc"]) and out["type"] == error["type"]
    field = [p for p in error["loc"] if isinstance(p, str)][-1].replace("_", " ")
    assert out["msg"].startswith(f"{field}: ")
    assert not any(word in out["msg"] for word in PYDANTIC_WORDS), out["msg"]


def test_type_words_have_only_known_placeholders() -> None:
    for words in TYPE_WORDS.values():
        words.format(min_length=1, max_length=2, ge=1, gt=1, le=1, lt=1, multiple_of=1,
                     expected="'a'")


def _plain(body: dict[str, Any]) -> None:
    assert body["errors"], body
    for error in body["errors"]:
        assert {"loc", "type", "msg"} <= set(error)
        assert not any(word in error["msg"] for word in PYDANTIC_WORDS), error["msg"]
        assert "--" not in error["msg"] and "--" not in body["detail"]
    assert not any(word in body["detail"] for word in ("should", "Value error")), body["detail"]


async def test_a_refused_ledger_entry_names_each_field_in_plain_words(client, world):
    headers = await login(client, "admin")
    resp = await client.post("/api/v1/residents", headers=headers, json={
        "site_id": "North!", "full_name": "", "phone": "call me", "birth_year": 1800})
    assert resp.status_code == 422
    _plain(resp.json())
    by_field = {e["loc"][-1]: e["msg"] for e in resp.json()["errors"]}
    assert by_field["birth_year"] == "birth year: must be 1880 or more"
    assert by_field["site_id"].startswith("site id: lowercase letters a-z")
    assert by_field["phone"].startswith("phone: not a phone number")


async def test_staff_refusals_name_their_field(client, world):
    headers = await login(client, "admin")
    base = {"username": "nils", "full_name": "Nils", "role": "care_worker", "site_id": "north"}
    weak = await client.post("/api/v1/users", headers=headers,
                             json={**base, "password": "short"})
    assert weak.status_code == 422
    _plain(weak.json())
    assert [e["loc"] for e in weak.json()["errors"]] == [["body", "password"]]
    bad_name = await client.post("/api/v1/users", headers=headers,
                                 json={**base, "username": "Nils Nilsen"})
    assert bad_name.status_code == 422
    _plain(bad_name.json())
    assert [e["loc"] for e in bad_name.json()["errors"]] == [["body", "username"]]
    no_site = await client.post("/api/v1/users", headers=headers, json={**base, "site_id": None})
    assert [e["loc"] for e in no_site.json()["errors"]] == [["body", "site_id"]]
    taken = await client.post("/api/v1/users", headers=headers,
                              json={**base, "username": "care-north"})
    assert taken.status_code == 409
    _plain(taken.json())
    assert [e["loc"] for e in taken.json()["errors"]] == [["body", "username"]]
    reset = await client.post(f"/api/v1/users/{world.care_north}/reset-password",
                              headers=headers, json={"password": "password1234"})
    assert reset.status_code == 422
    assert [e["loc"] for e in reset.json()["errors"]] == [["body", "password"]]


async def test_password_change_refusals_name_their_field(client, world):
    from tests.support.dashboard import PASSWORD
    headers = await login(client, "care-north")
    wrong = await client.post("/api/v1/me/password", headers=headers, json={
        "current_password": "not the password", "new_password": "a long new passphrase 9"})
    assert wrong.status_code == 400
    assert [e["loc"] for e in wrong.json()["errors"]] == [["body", "current_password"]]
    weak = await client.post("/api/v1/me/password", headers=headers, json={
        "current_password": PASSWORD, "new_password": "qwertyuiopas"})
    assert weak.status_code == 422
    _plain(weak.json())
    assert [e["loc"] for e in weak.json()["errors"]] == [["body", "new_password"]]
