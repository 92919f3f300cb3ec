"""Process statistics: CPU time and peak memory, and writing them atomically (`eldercare
pipeline --stats-file`, read by the benchmarks). Analysis of samples is the benchmarks'."""

from __future__ import annotations

import json
import resource
from pathlib import Path
from typing import Any


def cpu_seconds() -> float:
    """User + system CPU seconds used by this process so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write stats atomically."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)
