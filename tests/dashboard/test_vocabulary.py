"""GET /api/v1/vocabulary and the copy embedded in the pages."""

from __future__ import annotations

import json
import re
from typing import get_args

import pytest

from dashboard.vocabulary import Language
from kernel.accounts import Role
from kernel.i18n import LANGUAGES
from tests.support.dashboard import login

pytestmark = pytest.mark.anyio


async def test_every_role_reads_the_vocabulary_in_english(client, world):
    for user in ("admin", "duty-north", "care-north"):
        resp = await client.get("/api/v1/vocabulary", headers=await login(client, user))
        assert resp.status_code == 200, (user, resp.text)
    resp = await client.get("/api/v1/vocabulary", params={"lang": "en"},
                            headers=await login(client, "family-alice"))
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


async def test_an_unknown_language_is_422_and_a_token_is_needed(client, world):
    resp = await client.get("/api/v1/vocabulary", params={"lang": "xx"},
                            headers=await login(client, "duty-north"))
    assert resp.status_code == 422
    assert (await client.get("/api/v1/vocabulary")).status_code == 401


def test_the_api_offers_exactly_the_platforms_languages():
    assert get_args(Language) == LANGUAGES


async def test_the_pages_embed_the_same_vocabulary(client, world):
    served = (await client.get("/api/v1/vocabulary",
                               headers=await login(client, "care-north"))).json()
    for path in ("/", "/worker"):
        page = (await client.get(path)).text
        block = re.search(r'<script id="vocabulary" type="application/json">(.*?)</script>',
                          page, re.S)
        assert block is not None, path
        assert json.loads(block.group(1)) == served


def test_no_script_of_the_pages_spells_out_a_label():
    """The pages take every label from the vocabulary; a label typed into a script again
    would stay English in every other language."""
    from dashboard.app import STATIC_DIR
    from dashboard.vocabulary import vocabulary

    document = vocabulary().model_dump()
    labels = {term["label"] for key, terms in document.items() if key != "lang"
              for term in terms}
    for script in STATIC_DIR.glob("*.js"):
        text = script.read_text()
        typed = [label for label in labels if f'"{label}"' in text or f"'{label}'" in text]
        assert typed == [], script.name
