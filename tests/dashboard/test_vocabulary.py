"""GET /api/v1/vocabulary and the copy embedded in the pages."""

from __future__ import annotations

import json
import re
from typing import get_args

import pytest

from dashboard.vocabulary import Language
from kernel.accounts import Role
from kernel.i18n import LANGUAGES

pytestmark = pytest.mark.anyio


async def test_the_vocabulary_is_public_and_in_english(client):
    resp = await client.get("/api/v1/vocabulary", params={"lang": "en"})
    assert resp.status_code == 200, resp.text
    words = resp.json()
    assert words["lang"] == "en"
    types = {t["value"]: t["label"] for t in words["alert_types"]}
    assert types["fall"] == "Fall detected"
    assert [s["value"] for s in words["severities"]] == [
        "critical", "urgent", "high", "warning", "info"]
    assert {r["value"]: r["label"] for r in words["roles"]}[Role.CARE_WORKER] == "Care worker"
    statuses = {s["value"]: s for s in words["statuses"]}
    assert statuses["acknowledged"] == {"value": "acknowledged", "label": "Acknowledged",
                                        "family": "A carer is responding"}
    outcomes = {o["value"]: o for o in words["outcomes"]}
    assert outcomes["hospital"]["choosable"] is True
    assert outcomes["cancelled_by_resident"]["choosable"] is False
    assert outcomes["false_alarm"]["family"] == "it was a false alarm"


async def test_an_unknown_language_is_422(client):
    resp = await client.get("/api/v1/vocabulary", params={"lang": "xx"})
    assert resp.status_code == 422


def test_the_api_offers_exactly_the_platforms_languages():
    assert get_args(Language) == LANGUAGES


async def test_the_pages_embed_the_same_vocabulary(client):
    served = (await client.get("/api/v1/vocabulary")).json()
    for path in ("/", "/worker"):
        page = (await client.get(path)).text
        block = re.search(r'<script id="vocabulary" type="application/json">(.*?)</script>',
                          page, re.S)
        assert block is not None, path
        assert json.loads(block.group(1)) == served
