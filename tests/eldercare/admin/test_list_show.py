"""Every `eldercare <noun> list|show`: a readable table by default, one machine format with
--json (an array of the API's list items; one object for `show`), through one helper
(eldercare/admin/output.py). Found by the issue 13 new-user trial: tables, JSON lines and
JSON arrays side by side."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from dashboard.devices import DeviceDetailOut, DeviceRowOut
from dashboard.ledger.models import ResidentListOut, SiteOut
from dashboard.staff import AccountOut
from eldercare.admin import output
from tests.support.cli import run_main
from tests.support.services import Broker

PW = ("--password", "quiet harbour lantern 42")


@pytest.fixture
def world(cli_db: str, broker: Broker, monkeypatch: pytest.MonkeyPatch,
          capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    monkeypatch.setenv("ELDERCARE_BROKER_ACCOUNTS_DIR", str(broker.data_dir))
    run_main(capsys, "site", "add", "north", "--name", "North", "--timezone", "Asia/Shanghai")
    _, out, _ = run_main(capsys, "resident", "add", "--site", "north", "--name", "Dagny Dahl",
                     "--birth-year", "1936")
    rid = str(json.loads(out)["resident_id"])
    _, out, _ = run_main(capsys, "device", "add", "--resident", rid, "--type", "call_button")
    device = json.loads(out)["device_id"]
    run_main(capsys, "user", "add", "--username", "dora", "--role", "duty_officer", "--site",
         "north", *PW)
    return {"resident": rid, "device": device}


LISTS = [("site", (), SiteOut, "SITE"), ("resident", (), ResidentListOut, "ID"),
         ("user", (), AccountOut, "ID"), ("device", (), DeviceRowOut, "DEVICE")]


@pytest.mark.parametrize(("noun", "extra", "model", "first"), LISTS,
                         ids=[n for n, *_ in LISTS])
def test_list_is_a_table_and_json_is_an_array_of_the_api_items(
        world: dict[str, str], capsys: pytest.CaptureFixture[str], noun: str,
        extra: tuple[str, ...], model: type, first: str) -> None:
    code, out, _ = run_main(capsys, noun, "list", *extra)
    assert code == 0
    head, *rows = out.splitlines()
    assert head.split()[0] == first and len(rows) == 1
    assert not out.lstrip().startswith(("[", "{"))
    code, out, _ = run_main(capsys, noun, "list", *extra, "--json")
    items = json.loads(out)
    assert isinstance(items, list) and len(items) == 1
    assert set(items[0]) == set(model.model_fields)  # type: ignore[attr-defined]
    model.model_validate(items[0])  # type: ignore[attr-defined]


def test_show_is_readable_and_json_is_one_object(world: dict[str, str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    for argv, model in ((("site", "show", "north"), SiteOut),
                        (("device", "show", world["device"]), DeviceDetailOut),
                        (("user", "show", "--username", "dora"), None),
                        (("resident", "show", world["resident"]), None)):
        code, out, _ = run_main(capsys, *argv)
        assert code == 0 and not out.lstrip().startswith("{"), argv
        code, out, _ = run_main(capsys, *argv, "--json")
        obj = json.loads(out)
        assert isinstance(obj, dict), argv
        if model is not None:
            model.model_validate(obj)
    _, out, _ = run_main(capsys, "device", "show", world["device"])
    assert "history:" in out and "provision" in out


def test_the_table_aligns_columns_and_shows_times_in_the_site_zone() -> None:
    rows = [{"id": "bed-1", "site_id": "north", "seen": datetime(2026, 3, 1, 16, 30, tzinfo=UTC),
             "risks": ["alone", "very_old"], "online": True},
            {"id": "btn-22", "site_id": "north", "seen": None, "risks": [], "online": None}]
    text = output.table(rows, [("id", "DEVICE"), ("seen", "SEEN"), ("risks", "RISKS"),
                               ("online", "ONLINE")],
                        {"north": ZoneInfo("Asia/Shanghai")})
    lines = text.splitlines()
    assert lines[1].startswith("bed-1   2026")  # "btn-22" sets the width
    assert lines[1].index("2026") == lines[0].index("SEEN") == lines[2].index(" - ") + 1
    assert lines[2].split() == ["btn-22", "-", "-", "-"]
    assert "2026-03-02 00:30" in lines[1] and "alone, very_old" in lines[1]
    assert lines[1].rstrip().endswith("yes")
    assert output.table([], [("id", "ID")]) == "(none)"


def test_resident_update_risk_replaces_add_and_remove_risk_keep_the_others(
        world: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    rid = world["resident"]

    def risks(*flags: str) -> list[str]:
        code, out, err = run_main(capsys, "resident", "update", rid, *flags, "--json")
        assert code == 0, err
        return list(json.loads(out)["risks"])

    assert risks("--risk", "alone", "--risk", "very_old") == ["alone", "very_old"]
    assert risks("--add-risk", "dementia", "--add-risk", "alone") == [
        "alone", "very_old", "dementia"]
    assert risks("--remove-risk", "very_old") == ["alone", "dementia"]
    assert risks("--risk", "disabled") == ["disabled"]  # --risk replaces the whole list
    code, _, err = run_main(capsys, "resident", "update", rid, "--risk", "alone", "--add-risk",
                        "dementia")
    assert code == 1 and "replaces the whole list" in err
    from eldercare.cli import main

    with pytest.raises(SystemExit):
        main(["resident", "update", "--help"])
    assert "REPLACES the whole stored list" in " ".join(capsys.readouterr().out.split())
