"""Changes joining an open routine-change alert: added once, newest last, the opening change
kept on top."""

from __future__ import annotations

from alerts.learning.merge import changes_of, merge_changes


def change(feature: str, day: str, direction: str = "up") -> dict[str, object]:
    return {"feature": feature, "direction": direction, "day": day, "explanation": feature}


def details(*changes: dict[str, object]) -> dict[str, object]:
    return {**changes[0], "changes": list(changes)}


def test_a_new_feature_is_added_and_the_opening_change_stays_on_top() -> None:
    merged, added = merge_changes(details(change("night_exits", "2026-04-01")),
                                  details(change("resting_hr", "2026-04-03")))
    assert merged["feature"] == "night_exits" and merged["day"] == "2026-04-01"
    assert [c["feature"] for c in merged["changes"]] == ["night_exits", "resting_hr"]
    assert [c["feature"] for c in added] == ["resting_hr"]


def test_the_same_change_again_adds_nothing_a_later_one_replaces_it() -> None:
    open_ = details(change("night_exits", "2026-04-01"), change("bedtime", "2026-04-01",
                                                                "down"))
    same, added = merge_changes(open_, details(change("night_exits", "2026-04-01")))
    assert added == [] and same["changes"] == open_["changes"]
    later, added = merge_changes(open_, details(change("night_exits", "2026-04-09")))
    assert [(c["feature"], c["day"]) for c in later["changes"]] == [
        ("bedtime", "2026-04-01"), ("night_exits", "2026-04-09")]
    assert len(added) == 1


def test_details_without_a_list_read_as_their_one_change() -> None:
    old = {k: v for k, v in change("rise_time", "2026-04-01").items()}
    assert changes_of(old) == [old]
    assert changes_of(None) == [] and changes_of({"note": "x"}) == []
