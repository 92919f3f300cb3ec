"""The family view's sentences, defined once and marked for translation (kernel.i18n).

The server writes the sentence ("In bed since 22:14"), so the page never assembles words
of its own; the state's `kind` stays machine-readable for styling.
"""

from __future__ import annotations

from kernel.i18n import N_

STATE_WORDS: dict[str, str] = {
    "in_bed": N_("In bed since {since}"),
    "up": N_("Up and about since {since}"),
    "away": N_("Probably out of the house since {since}"),
    "offline_reported": N_("Sensor offline since {since} — the centre has been told"),
    "offline": N_("Sensor offline since {since}"),
    "no_sensor": N_("No bed sensor is installed yet"),
    "no_data": N_("No news from the bed sensor yet"),
}

# The same states when it is not known since when (each is its sentence without "since …").
NO_SINCE: dict[str, str] = {
    "in_bed": N_("In bed"),
    "up": N_("Up and about"),
    "away": N_("Probably out of the house"),
    "offline_reported": N_("Sensor offline — the centre has been told"),
    "offline": N_("Sensor offline"),
    "no_sensor": STATE_WORDS["no_sensor"],
    "no_data": STATE_WORDS["no_data"],
}

YESTERDAY = N_("{time} yesterday")

COMPARED: dict[str, str] = {
    "usual": N_("about usual"),
    "higher": N_("higher than usual"),
    "lower": N_("lower than usual"),
    "unknown": N_("not enough nights yet"),
}

ALL_CLEAR = N_("All clear at {time}: {outcome}")
