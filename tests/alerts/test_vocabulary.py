"""The one vocabulary: every alert type, severity, status and outcome has its words, and the
English words are the ones the pages and notifications have always shown."""

from __future__ import annotations

import pytest

from alerts import vocabulary as v
from alerts.model import AlertStatus, AlertType, Outcome, Severity


@pytest.mark.parametrize(("words", "enum"), [
    (v.TYPE_LABELS, AlertType), (v.TYPE_WORDS, AlertType),
    (v.SEVERITY_LABELS, Severity), (v.STATUS_LABELS, AlertStatus),
    (v.OUTCOME_LABELS, Outcome), (v.OUTCOME_WORDS, Outcome), (v.FAMILY_OUTCOME_WORDS, Outcome),
])
def test_every_value_has_its_words(words, enum):
    assert list(words) == list(enum)
    assert all(text.strip() for text in words.values())


def test_family_words_for_every_state_but_resolved_which_names_the_outcome():
    assert set(v.FAMILY_STATUS_WORDS) == set(AlertStatus) - {AlertStatus.RESOLVED}
    assert v.FAMILY_RESOLVED.format(outcome="x") == "Resolved: x"


def test_severities_are_listed_loudest_first():
    ranks = [Severity(s).rank for s in v.SEVERITY_LABELS]
    assert ranks == sorted(ranks, reverse=True)


def test_english_words_are_todays():
    assert v.TYPE_LABELS[AlertType.FALL] == "Fall detected"
    assert v.TYPE_LABELS[AlertType.SOS] == "SOS call"
    assert v.TYPE_WORDS[AlertType.FALL] == "possible fall"
    assert v.OUTCOME_LABELS[Outcome.OTHER] == "Other (describe in the note)"
    assert v.OUTCOME_WORDS[Outcome.OTHER] == "closed"
    assert v.FAMILY_OUTCOME_WORDS[Outcome.ASSISTED_AT_HOME] == "a carer helped at home"
