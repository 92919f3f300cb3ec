"""The evaluation report: Markdown (report.md) and PNG plots, in one output directory.

Plots use matplotlib's Agg backend (files only, no display). Times are the cohort site's
zone, 24-hour `YYYY-MM-DD HH:MM` (kernel.sites.site_time).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from eldercare.evaluation.harness import POPULATION, Evaluation
from eldercare.evaluation.labels import ROUTINE_CHANGE, ROUTINE_WINDOW, Label
from eldercare.evaluation.scoring import Scores, TypeScore
from eldercare.evaluation.targets import BUTTON_TYPES, DAY_S, ROUTINE_DELAY_DAYS, Judged, judge
from eldercare.evaluation.tradeoff import DelayLimits
from eldercare.evaluation.variants import NOT_WIRED
from kernel.sites import site_time
from simulators.cohort import DEFAULT_DAYS, DEFAULT_RESIDENTS

REPORT = "report.md"
TRUTH = "ground_truth.jsonl"
LABELS = "labels.jsonl"
PLOTS = ("false_alerts_per_resident.png", "detection_delay.png", "ablation.png",
         "recall_by_type.png")
MAX_LISTED = 25


def write_report(ev: Evaluation, out: Path, command: str) -> list[Path]:
    """Write report.md, the plots and the ground truth (the cohort's incidents and
    episodes, and the labels with their allowed windows) into `out`; the files written."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [_plot_false_per_resident(ev, out / PLOTS[0]),
             _plot_delays(ev, out / PLOTS[1]), _plot_ablation(ev, out / PLOTS[2]),
             _plot_recall(ev, out / PLOTS[3])]
    md = out / REPORT
    md.write_text("\n".join(markdown(ev, command)) + "\n")
    truth = out / TRUTH
    truth.write_text("".join(line + "\n" for line in ev.cohort.truth_lines()))
    labels = out / LABELS
    labels.write_text("".join(json.dumps(row, sort_keys=True) + "\n"
                              for row in label_rows(ev)))
    return [md, *paths, truth, labels]


def label_rows(ev: Evaluation) -> Iterable[dict[str, object]]:
    """Every label and excusal as JSON: who, which alert type, from what, the window."""
    def iso(t: datetime) -> str:
        return t.astimezone(UTC).isoformat(timespec="seconds")

    for lab in ev.truth.labels:
        yield {"resident_id": lab.resident_id, "alert_type": lab.alert_type,
               "source": lab.source, "kind": "owed" if lab.expected else "control",
               "spike": lab.spike, "onset": iso(lab.onset),
               "window_start": iso(lab.window_start), "window_end": iso(lab.window_end)}
    for exc in ev.truth.excusals:
        yield {"resident_id": exc.resident_id, "alert_types": list(exc.alert_types),
               "kind": "excused", "reason": exc.reason, "window_start": iso(exc.start),
               "window_end": iso(exc.end)}


# --- Markdown ------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _dur(s: float | None) -> str:
    if s is None:
        return "–"
    if abs(s) >= 2 * DAY_S:
        return f"{s / DAY_S:.1f} d"
    if abs(s) >= 2 * 3600:
        return f"{s / 3600:.1f} h"
    if abs(s) >= 120:
        return f"{s / 60:.1f} min"
    return f"{s:.0f} s"


def _num(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def markdown(ev: Evaluation, command: str) -> list[str]:
    """The report's lines."""
    spec = ev.cohort.spec
    default = ev.scores[ev.variants[0].name]
    lines = ["# Detection evaluation report", ""]
    if spec.residents < DEFAULT_RESIDENTS or spec.days < DEFAULT_DAYS:
        lines += [f"> **Not the default cohort**: {spec.residents} residents x {spec.days} "
                  f"days (the default is {DEFAULT_RESIDENTS} x {DEFAULT_DAYS}). Numbers on a "
                  "smaller cohort are less certain; the targets are defined on the default.",
                  ""]
    lines += _header(ev, command)
    lines += ["", "## Targets (issue 15, on the default cohort)", "",
              "| Target | Goal | Measured | Status | Margin (+) or shortfall (−) |",
              "|---|---|---|---|---|"]
    judged = judge(default, ev.routine_wired, _not_judged(ev))
    lines += [_target_row(j) for j in judged]
    lines += ["", *_why(judged, default, ev)]
    lines += ["", "## Per alert type (the platform as configured)", "",
              "Recall counts owed (sustained) events alerted within their window; delay is "
              "from the event's onset; precision is alerts matching an owed event over all "
              "alerts not excused. See docs/evaluation.md for every definition.", "",
              "| Alert type | Owed | Detected | Recall | Delay median | Delay p95 | Alerts | "
              "Precision | False | False / resident-day | Duplicates | Excused | "
              "Controls alerted |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for t, s in sorted(default.by_type.items()):
        if t == ROUTINE_CHANGE and not ev.routine_wired:
            lines.append(f"| {t} | {s.owed} | {_not_judged(ev)} | | | | | | | | | | |")
            continue
        if not (s.owed or s.alerts or s.controls):
            continue
        lines.append(_type_row(s, default))
    shown = [t for t in default.by_type if t != ROUTINE_CHANGE or ev.routine_wired]
    lines.append(_type_row(default.total_of(shown), default, name="**all**"))
    lines += ["", "## Concentration", "",
              f"- Share of all alerts from the noisiest 10 % of residents: "
              f"{_pct(default.noisy_share())}",
              f"- Share of false alerts from the noisiest 10 % of residents: "
              f"{_pct(default.noisy_share(default.false_by_resident))}",
              f"- Residents with no false alert: "
              f"{spec.residents - len(default.false_by_resident)} of {spec.residents}"]
    lines += ["", *_routine(ev, default)]
    lines += ["", *_ablation(ev)]
    lines += ["", *_e2e(ev)]
    lines += ["", *_misses(ev, default), "", *_false_list(ev, default)]
    lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in PLOTS]
    return lines


def _header(ev: Evaluation, command: str) -> list[str]:
    spec = ev.cohort.spec
    arche = Counter(r.archetype.value for r in ev.cohort.residents)
    incs = Counter(i.type.value for r in ev.cohort.residents for i in r.incidents)
    eps = Counter(e.kind.value for r in ev.cohort.residents for e in r.episodes)
    first = site_time(spec.start, spec.timezone)
    last = site_time(spec.end, spec.timezone)
    return [
        f"- Command: `{command}`",
        f"- Cohort: {spec.residents} residents x {spec.days} days = {spec.resident_days} "
        f"resident-days, seed {spec.seed}, {first} to {last} ({spec.timezone}), one bed "
        f"mat (a reading every {spec.telemetry_period_s:g} s) and one call button each",
        "- Routines: " + ", ".join(f"{k} {v}" for k, v in sorted(arche.items())),
        "- Incidents: " + ", ".join(f"{k} {v}" for k, v in sorted(incs.items())),
        "- Episodes (not alert incidents): " + ", ".join(f"{k} {v}"
                                                         for k, v in sorted(eps.items())),
        f"- Run: {ev.wall_s:.0f} s wall time with {ev.jobs} worker process(es) on this "
        f"machine ({os.cpu_count()} cores, shared); {ev.cpu_s:.0f} s of processor time "
        f"({1000 * ev.cpu_s / max(spec.resident_days, 1):.0f} ms per resident-day); "
        f"{ev.records:,} records; the ablation ran "
        f"{len({v.detector_key for v in ev.variants})} detector configurations "
        f"({len(ev.variants)} variants) side by side on {ev.ablation_residents} resident(s)",
        _routine_header(ev),
    ]


def _not_judged(ev: Evaluation) -> str:
    """Why the routine-change rows are empty."""
    return f"not judged ({ev.routine_skipped})" if ev.routine_skipped else "not wired"


def _routine_header(ev: Evaluation) -> str:
    r = ev.routine
    if r is None:
        return f"- Routine change: {_not_judged(ev)}"
    steps = ", ".join(f"{k} {v:.0f} s" + (f" ({r.cpu[k]:.0f} s CPU)" if k in r.cpu else "")
                      for k, v in r.seconds.items())
    return (f"- Routine change: the services' daily summaries and learning job on a real "
            f"PostgreSQL+TimescaleDB, {r.rows.get('vitals_1m', 0):,} minute rows and "
            f"{r.rows.get('device_status', 0):,} status reports COPYed in, "
            f"{r.rows.get('resident_daily', 0):,} resident-days summarised, the job run "
            f"after each of {r.days_judged} days; wall time (included above) and processor "
            f"time of this process and its database connection: {steps}")


def _target_row(j: Judged) -> str:
    if j.value is None:
        return f"| {j.name} | {j.target} | – | {j.status} | – |"
    if j.unit == "ratio":
        value, by = _pct(j.value), f"{100 * (j.by or 0):+.1f} points"
    elif j.unit == "count":
        value, by = f"{j.value:.0f}", f"{j.by or 0:+.0f}"
    elif j.unit == "days":
        value, by = f"{j.value:.1f} days", f"{j.by or 0:+.1f} days"
    else:
        value, by = f"{j.value:.3f}", f"{j.by or 0:+.3f}"
    status = "**pass**" if j.passed else "**MISS**"
    return f"| {j.name} | {j.target} | {value} | {status} | {by} |"


def _why(judged: Sequence[Judged], s: Scores, ev: Evaluation) -> list[str]:
    """Where each missed target's shortfall comes from."""
    out: list[str] = []
    for j in judged:
        if j.value is None or j.passed or j.name.startswith("routine change"):
            continue  # routine change: _routine_why
        if "false alerts per resident-day" in j.name:
            worst = sorted(((t.false_alerts, name) for name, t in s.by_type.items()
                            if t.false_alerts), reverse=True)
            parts = ", ".join(f"{name} {n} ({n / s.resident_days:.3f}/resident-day)"
                              for n, name in worst)
            out.append(f"- *{j.name}* missed: the false alerts are {parts}. The section "
                       "'False alerts' below lists them with the resident's routine.")
        elif "recall" in j.name:
            missed = [lab for t in s.by_type.values() for lab in t.missed
                      if t.alert_type not in (ROUTINE_CHANGE,)]
            kinds = Counter(lab.alert_type for lab in missed)
            out.append(f"- *{j.name}* missed: {len(missed)} owed events not alerted in their "
                       "window (" + ", ".join(f"{k} {v}" for k, v in kinds.most_common())
                       + "); listed under 'Missed events'.")
        elif "spikes" in j.name:
            out.append(f"- *{j.name}* missed: {j.value:.0f} sub-persistence spikes or "
                       "artefacts raised an alert.")
    out += _routine_why(judged, s, ev)
    if ev.routine_skipped:
        out.append(f"- Routine change was **not judged** in this run ({ev.routine_skipped}): "
                   "its rows are left empty, never estimated.")
    elif not ev.routine_wired:
        out.append("- Routine change is **not wired**: the learning package (daily features, "
                   "personal baselines, routine_change) is built separately; its rows are "
                   f"left empty, never estimated. The cohort holds "
                   f"{s.by_type.get(ROUTINE_CHANGE, TypeScore('')).owed} gradual changes "
                   "with a known onset for it.")
    return out


def _routine_why(judged: Sequence[Judged], s: Scores, ev: Evaluation) -> list[str]:
    """Where a routine-change target's shortfall comes from (issue 15: by how much, why)."""
    rc = s.by_type.get(ROUTINE_CHANGE)
    if rc is None or not ev.routine_wired:
        return []
    out: list[str] = []
    found = ev.routine.judgements if ev.routine is not None else []
    labels = [lab for lab in ev.truth.labels
              if lab.alert_type == ROUTINE_CHANGE and lab.expected]
    for j in judged:
        if not j.name.startswith("routine change") or j.value is None or j.passed:
            continue
        if "recall" in j.name:
            kinds = Counter(lab.source for lab in rc.missed)
            moved = sum(1 for lab in rc.missed if any(
                e.covers(j2.resident_id, ROUTINE_CHANGE, j2.at, j2.feature)
                for j2 in found for e in ev.truth.excusals
                if e.resident_id == lab.resident_id and e.details
                and lab.window_start <= j2.at <= lab.window_end))
            out.append(f"- *{j.name}* missed by {100 * -(j.by or 0):.1f} points: "
                       f"{len(rc.missed)} of {rc.owed} gradual changes were not judged "
                       "changed on their own feature within their window ("
                       + ", ".join(f"{k} {v}" for k, v in kinds.most_common()) + ")"
                       + _missed_why(ev, rc.missed, moved) + ".")
        elif "delay" in j.name:
            out.append(f"- *{j.name}* missed by {-(j.by or 0):.1f} days: "
                       + _delay_why(ev, labels, rc.delay_median_s))
        else:
            false = _false_routine(ev)
            feats = Counter(f for _rid, f, _at, _a in false)
            earlier: set[tuple[int, str]] = set()
            again = 0
            for rid, f, _at, _a in sorted(false, key=lambda x: x[2]):
                again += (rid, f) in earlier
                earlier.add((rid, f))
            out.append(f"- *{j.name}* missed by {-(j.by or 0):.2f}: "
                       f"{rc.false_alerts} false routine-change judgements ("
                       + ", ".join(f"{k} {v}" for k, v in feats.most_common())
                       + f"); {again} of them repeat an earlier false judgement of the same "
                       "resident and feature: a change that persists is judged again after "
                       "each 7-day cooldown until it enters the baseline (28 days ending a "
                       "week before), and time out of bed at night and the longest time "
                       "away from bed vary most from night to night.")
    return out


def _missed_why(ev: Evaluation, missed: Sequence[Label], moved: int) -> str:
    """What the run measured about the missed changes (tradeoff.DelayLimits)."""
    text = ""
    lim = ev.delay_limits
    if lim is not None:
        quiet = sum(1 for lab in missed if lab in lim.never_shown)
        text += (f"; {quiet} of them never stood at the alert level ({lim.limit:g} robust "
                 "spreads of the resident's usual) on a single day of their window")
    if moved:
        text += (f"; {moved} of them were judged changed on a feature the change moves as a "
                 "consequence (e.g. more night exits: time out of bed at night), which is "
                 "excused, not counted as a detection")
    return text


def _delay_why(ev: Evaluation, labels: Sequence[Label], job_s: float | None) -> str:
    """Why the delay is what it is, in this run's own numbers (tradeoff.DelayLimits)."""
    ramps = sorted((lab.window_end - ROUTINE_WINDOW - lab.onset).total_seconds() / DAY_S
                   for lab in labels)
    text = ("the changes ramp up over 3 to 10 days (median "
            f"{ramps[len(ramps) // 2] if ramps else float('nan'):.1f} days); a night's "
            "features are judged the same morning (12:30 local), the rest at midnight. ")
    lim = ev.delay_limits
    if lim is None:
        return text + ("The EWMA alerts once a change stands about two robust spreads of the "
                       "resident's usual, so most are judged late in their ramp.")
    shown = lim.shown_median_days
    later = None if job_s is None or shown is None else job_s / DAY_S - shown
    text += (f"Measured on the days the job judged: a change's own feature first stood at "
             f"the alert level ({lim.limit:g} robust spreads of the resident's usual) on a "
             f"single day {_shown(lim)} - no detector that waits for that level "
             "can alert sooner. ")
    if later is not None:
        text += (f"The job's median is {_days(later)} later: the EWMA wants that level on "
                 "more than one day, so that one ordinary day that far out does not alert. ")
    text += "Lower thresholds (same days, table 'What a shorter delay costs'): "
    text += "; ".join(f"{r.threshold:g} gives {_days(r.delay_median_days)} at "
                      f"{r.false_per_30:.2f} false per 30 resident-days" for r in lim.rows[1:])
    target = ROUTINE_DELAY_DAYS
    best = lim.cheapest_within(target)
    if best is not None:
        return text + (f". The {target:g}-day median first comes at threshold "
                       f"{best.threshold:g}, with {best.false_per_30:.2f} false alerts per 30 "
                       "resident-days (target <= 1).")
    return text + (f". None of them reaches a {target:g}-day median: on this cohort the "
                   "target asks for alerts before the changes stand out of the residents' "
                   "own day-to-day variation.")


def _shown(lim: DelayLimits) -> str:
    """'a median 3.2 days after onset (27 of 27 changes)', or that none stood out."""
    if not lim.owed:
        return "no gradual change is owed in this run"
    if lim.shown_median_days is None:
        return f"on no day, for any of the {lim.owed} changes"
    return (f"a median {_days(lim.shown_median_days)} after onset ({lim.shown} of {lim.owed} "
            "changes)")


def _days(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} days"


def _delay_table(ev: Evaluation) -> list[str]:
    """Routine change judged again with lower thresholds on the same days (tradeoff)."""
    lim = ev.delay_limits
    if lim is None:
        return []
    lines = ["", "### What a shorter delay costs", "",
             "The days the learning job judged, judged again by the same routine-change code "
             "with lower thresholds (each judgement counted as its own alert; the job merges "
             "a resident's changes into one open alert, so the first row can differ a "
             "little from the figures above). 'First shown' is when the job judged the first "
             "day on which the change's own feature stood at the default alert level "
             f"({lim.limit:g} robust spreads): {_shown(lim)}.", "",
             "| Threshold | Recall | Median delay | False alerts | False / 30 resident-days |",
             "|---|---|---|---|---|"]
    for i, r in enumerate(lim.rows):
        name = f"{r.threshold:g}" + (" (default)" if i == 0 else "")
        recall = f"{100 * r.detected / r.owed:.1f} %" if r.owed else "-"
        lines.append(f"| {name} | {recall} | {_days(r.delay_median_days)} | "
                     f"{r.false_alerts} | {r.false_per_30:.2f} |")
    return lines


def _false_routine(ev: Evaluation) -> list[tuple[int, str, datetime, str]]:
    """(resident, feature, time, routine) of each false routine-change alert."""
    return list(_false_alerts(ev, ev.variants[0].name, with_detail=True))


def _routine(ev: Evaluation, s: Scores) -> list[str]:
    """Routine change in detail: each kind of gradual change, the misses, the false ones."""
    r = ev.routine
    lines = ["## Routine change (gradual changes, the learning job)", ""]
    if r is None:
        return [*lines, f"{_not_judged(ev).capitalize()}."]
    tz = ev.cohort.spec.timezone
    labels = [lab for lab in ev.truth.labels
              if lab.alert_type == ROUTINE_CHANGE and lab.expected]
    found = [j for j in r.judgements]
    by_kind: dict[str, list[float | None]] = {}
    lines += ["Each gradual change owes a judgement of its own feature from its onset to 14 "
              "days after its ramp; delay is from the onset (docs/evaluation.md).", "",
              "| Change | Feature | Owed | Detected | Delay median | Delay max |",
              "|---|---|---|---|---|---|"]
    for lab in labels:
        hits = [(j.at - lab.onset).total_seconds() for j in found
                if lab.matches(j.resident_id, ROUTINE_CHANGE, j.at, j.feature)]
        by_kind.setdefault(f"{lab.source}|{lab.detail}", []).append(min(hits, default=None))
    for key, delays in sorted(by_kind.items()):
        src, feat = key.split("|")
        got = [d for d in delays if d is not None]
        med = sorted(got)[len(got) // 2] if got else None
        lines.append(f"| {src} | {feat} | {len(delays)} | {len(got)} | {_dur(med)} | "
                     f"{_dur(max(got) if got else None)} |")
    rc = s.by_type.get(ROUTINE_CHANGE, TypeScore(ROUTINE_CHANGE))
    lines += ["", f"Judgements: {len(r.judgements)} ({len(r.repeats())} joined an alert "
              f"already open); excused {rc.excused} (a consequence of the change's own "
              "feature, or a hospital stay); false "
              f"{rc.false_alerts}.", ""]
    for lab in sorted(rc.missed, key=lambda lab: lab.onset):
        other = sorted({f"{j.feature} {site_time(j.at, tz)[:10]}" for j in found
                        if j.resident_id == lab.resident_id})
        lines.append(f"- missed: resident {lab.resident_id} "
                     f"({ev.cohort.resident(lab.resident_id).archetype.value}), {lab.source} "
                     f"from {site_time(lab.onset, tz)}; its judgements: "
                     f"{', '.join(other) or 'none'}")
    false = _false_routine(ev)
    if false:
        groups = Counter((f, arche) for _rid, f, _at, arche in false)
        lines += ["", "| False: feature | Routine | Judgements |", "|---|---|---|"]
        lines += [f"| {f} | {a} | {n} |" for (f, a), n in sorted(groups.items())]
    words = {(j.resident_id, j.at, j.feature): j.explanation for j in found}
    shown = [(rid, f, at) for rid, f, at, _a in false][:5]
    true = [(j.resident_id, j.feature, j.at) for j in found
            if any(lab.matches(j.resident_id, ROUTINE_CHANGE, j.at, j.feature)
                   for lab in labels)][:5]
    if true or shown:
        lines += ["", "What the care worker reads (the alert's explanation, site time):", ""]
    lines += [f"- detected, resident {rid} at {site_time(at, tz)}: "
              f"\"{words.get((rid, at, f), '')}\"" for rid, f, at in true]
    lines += [f"- false, resident {rid} at {site_time(at, tz)}: "
              f"\"{words.get((rid, at, f), '')}\"" for rid, f, at in shown]
    return lines + _delay_table(ev)


def _type_row(s: TypeScore, scores: Scores, name: str | None = None) -> str:
    fprd = s.false_alerts / scores.resident_days if scores.resident_days else 0.0
    controls = f"{s.controls_failed}/{s.controls}" if s.controls else "–"
    detected = f"{s.detected} ({s.by_repeat} by a repeat)" if s.by_repeat else f"{s.detected}"
    return (f"| {name or s.alert_type} | {s.owed} | {detected} | {_pct(s.recall)} | "
            f"{_dur(s.delay_median_s)} | {_dur(s.delay_p95_s)} | {s.alerts} | "
            f"{_pct(s.precision)} | {s.false_alerts} | {_num(fprd)} | {s.duplicates} | "
            f"{s.excused} | {controls} |")


def _rules_recall(s: Scores) -> float | None:
    owed = sum(t.owed for n, t in s.by_type.items() if n not in (*BUTTON_TYPES, ROUTINE_CHANGE))
    det = sum(t.detected for n, t in s.by_type.items()
              if n not in (*BUTTON_TYPES, ROUTINE_CHANGE))
    return det / owed if owed else None


def _ablation(ev: Evaluation) -> list[str]:
    spec = ev.cohort.spec
    k = ev.ablation_residents
    subset = ("the whole cohort" if k == spec.residents else
              f"residents 1–{k} ({k * spec.days} resident-days; `--ablation-residents`)")
    lines = ["## Ablation (one mechanism switched off at a time)", "",
             f"On {subset}: same records for every row; only the named mechanism differs. "
             "Persistence and hysteresis are switched off through alert settings, "
             "deduplication in the store logic, learned habits by leaving the context's usual "
             "rise and day unset.", "",
             "| Variant | SOS+fall recall | Rule recall | Alerts | False | False / resident-day "
             "| Spikes alerted | Controls alerted | Duplicates | Repeats | Suppressed |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for v in ev.variants:
        s = ev.ablation[v.name]
        tot = s.total
        btn_owed = sum(s.by_type[t].owed for t in BUTTON_TYPES if t in s.by_type)
        btn_det = sum(s.by_type[t].detected for t in BUTTON_TYPES if t in s.by_type)
        outcomes: Counter[str] = Counter()
        for r in ev.runs:
            if r.resident_id <= k:
                outcomes.update(r.outcomes.get(v.name, {}))
        lines.append(
            f"| {v.title} | {_pct(btn_det / btn_owed if btn_owed else None)} | "
            f"{_pct(_rules_recall(s))} | {tot.alerts} | {tot.false_alerts} | "
            f"{_num(s.false_per_resident_day())} | {tot.spikes_failed}/{tot.spikes} | "
            f"{tot.controls_failed}/{tot.controls} | {tot.duplicates} | "
            f"{outcomes['repeated']} | {outcomes['suppressed']} |")
    if POPULATION in ev.ablation:
        lines += ["", *_population_rows(ev)]
    else:
        for _name, title, why in NOT_WIRED:
            lines.append(f"| {title} | {why} | | | | | | | | | |")
    return lines


def _population_rows(ev: Evaluation) -> list[str]:
    """The routine-change ablation: personal baselines against population defaults."""
    lines = ["Personal baselines off: routine change judged against the features' population "
             "defaults (the rule alerts as configured; docs/evaluation.md):", "",
             "| Variant | Routine recall | Routine alerts | Routine false | Routine false / "
             "30 resident-days | All false / resident-day |", "|---|---|---|---|---|---|"]
    for title, name in (("as configured", ev.variants[0].name),
                        ("personal baselines off", POPULATION)):
        s = ev.ablation[name]
        t = s.by_type.get(ROUTINE_CHANGE, TypeScore(ROUTINE_CHANGE))
        per30 = 30 * t.false_alerts / s.resident_days if s.resident_days else None
        lines.append(f"| {title} | {_pct(t.recall)} | {t.alerts} | {t.false_alerts} | "
                     f"{_num(per30, 2)} | {_num(s.false_per_resident_day())} |")
    return lines


def _e2e(ev: Evaluation) -> list[str]:
    lines = ["## End-to-end sample (MQTT, gateway, pipeline, database)", ""]
    if ev.e2e is None:
        return [*lines, "Not run (`--e2e-sample 0`)."]
    return lines + ev.e2e.lines()


def _misses(ev: Evaluation, s: Scores) -> list[str]:
    tz = ev.cohort.spec.timezone
    missed = sorted((lab for t in s.by_type.values() for lab in t.missed
                     if t.alert_type != ROUTINE_CHANGE or ev.routine_wired),
                    key=lambda lab: (lab.alert_type, lab.onset))
    lines = ["## Missed events", ""]
    if not missed:
        return [*lines, "None: every owed event was alerted within its window."]
    lines += ["| Resident | Routine | Alert type | From | Onset | Window |",
              "|---|---|---|---|---|---|"]
    for lab in missed[:MAX_LISTED]:
        r = ev.cohort.resident(lab.resident_id)
        lines.append(f"| {lab.resident_id} | {r.archetype.value} | {lab.alert_type} | "
                     f"{lab.source} | {site_time(lab.onset, tz)} | "
                     f"{site_time(lab.window_start, tz)} – {site_time(lab.window_end, tz)} |")
    if len(missed) > MAX_LISTED:
        lines.append(f"| … {len(missed) - MAX_LISTED} more | | | | | |")
    return lines


def _false_list(ev: Evaluation, s: Scores) -> list[str]:
    """The false alerts, grouped by type and routine, and the first few of each type."""
    name = ev.variants[0].name
    lines = ["## False alerts", ""]
    false = list(_false_alerts(ev, name))
    if not false:
        return [*lines, "None."]
    groups = Counter((t, arche) for _rid, t, _at, arche in false)
    lines += ["| Alert type | Routine | False alerts |", "|---|---|---|"]
    lines += [f"| {t} | {a} | {n} |" for (t, a), n in sorted(groups.items())]
    lines += ["", "The first three of each type (site time):", ""]
    shown: Counter[str] = Counter()
    tz = ev.cohort.spec.timezone
    for rid, t, at, arche in false:
        if shown[t] >= 3:
            continue
        shown[t] += 1
        lines.append(f"- resident {rid} ({arche}): {t} at {site_time(at, tz)}")
    return lines


def _false_alerts(ev: Evaluation, variant: str, with_detail: bool = False
                  ) -> Iterable[tuple[int, str, datetime, str]]:
    """(resident, type - or the routine-change feature with `with_detail` -, time,
    routine) of each false alert."""
    truth = ev.truth
    for r in ev.runs:
        arche = ev.cohort.resident(r.resident_id).archetype.value
        for a in sorted(r.alerts.get(variant, []), key=lambda a: a.at):
            key = (a.resident_id, a.type, a.at, a.detail)
            if any(lab.expected and lab.matches(*key) for lab in truth.labels
                   if lab.resident_id == a.resident_id):
                continue
            if any(e.covers(*key) for e in truth.excusals if e.resident_id == a.resident_id):
                continue
            if with_detail and a.type != ROUTINE_CHANGE:
                continue
            yield a.resident_id, a.detail if with_detail else a.type, a.at, arche


# --- plots -----------------------------------------------------------------------------------


def _plot_false_per_resident(ev: Evaluation, path: Path) -> Path:
    s = ev.scores[ev.variants[0].name]
    days = ev.cohort.spec.days
    rates = sorted((s.false_by_resident.get(r.resident_id, 0) / days
                    for r in ev.cohort.residents), reverse=True)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.bar(range(len(rates)), rates, color="#c0504d")
    ax.axhline(0.2, color="black", linestyle="--", linewidth=1, label="target 0.2 (cohort)")
    ax.set_xlabel("residents, noisiest first")
    ax.set_ylabel("false alerts per day")
    ax.set_title("False alerts per resident-day, by resident (as configured)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _plot_delays(ev: Evaluation, path: Path) -> Path:
    s = ev.scores[ev.variants[0].name]
    data = [(t, [d / 60 for d in ts.delays_s]) for t, ts in sorted(s.by_type.items())
            if ts.delays_s]
    fig, ax = plt.subplots(figsize=(8, 4))
    if data:
        ax.boxplot([d for _t, d in data], orientation="horizontal", showfliers=True)
        ax.set_yticks(range(1, len(data) + 1), [t for t, _d in data])
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("delay from onset (minutes, log scale)")
    ax.set_title("Detection delay per alert type (as configured)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _plot_ablation(ev: Evaluation, path: Path) -> Path:
    rows = [(v.title, v.name) for v in ev.variants]
    if POPULATION in ev.ablation:
        rows.append(("personal baselines off (routine change)", POPULATION))
    names = [title for title, _n in rows]
    rates = [ev.ablation[n].false_per_resident_day() for _t, n in rows]
    recall = [_rules_recall(ev.ablation[n]) or 0.0 for _t, n in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    a1.barh(names, rates, color="#4f81bd")
    a1.axvline(0.2, color="black", linestyle="--", linewidth=1)
    a1.set_xlabel("false alerts per resident-day")
    a1.invert_yaxis()
    a2.barh(names, [100 * r for r in recall], color="#9bbb59")
    a2.set_xlabel("rule recall (%)")
    a2.set_yticks([])
    a2.invert_yaxis()
    fig.suptitle("Ablation: one mechanism off at a time")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _plot_recall(ev: Evaluation, path: Path) -> Path:
    s = ev.scores[ev.variants[0].name]
    rows = [(t, ts.recall) for t, ts in sorted(s.by_type.items())
            if ts.owed and (t != ROUTINE_CHANGE or ev.routine_wired)]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.barh([t for t, _r in rows], [100 * (r or 0.0) for _t, r in rows], color="#8064a2")
    ax.axvline(99, color="black", linestyle="--", linewidth=1, label="99 %")
    ax.set_xlim(0, 100)
    ax.set_xlabel("recall within the allowed window (%)")
    ax.set_title("Recall per alert type (as configured)")
    ax.invert_yaxis()
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
