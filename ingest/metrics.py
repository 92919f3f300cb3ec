"""Commit hooks that measure the write path (installed by `eldercare pipeline --stats-file`)."""

from __future__ import annotations

from datetime import UTC, datetime

from ingest.batch import Batch

LAG_SAMPLES_MAX = 400_000
LAG_SAMPLE_EVERY = 10


class LagSampler:
    """Records (commit time, publish-to-commit lag) of every n-th telemetry row, counted
    across batches; an `IngestWriter.on_commit` hook.

    Every sample then stands for the same number of messages, so plain percentiles of the
    samples are percentiles over messages: a 5,000-row backlog batch weighs as much as its
    5,000 messages. (A fixed number of samples per batch under-weighted exactly the large,
    late batches in the p99.) When the list is full, every other sample is dropped and the
    stride doubled: memory stays bounded and the weights stay equal.
    """

    def __init__(self, max_samples: int = LAG_SAMPLES_MAX, every: int = LAG_SAMPLE_EVERY
                 ) -> None:
        self.samples: list[tuple[float, float]] = []
        self._max = max_samples
        self._every = every
        self._skip = 0

    def __call__(self, batch: Batch, committed_at: float) -> None:
        """Sample a committed batch; `committed_at` is the commit's wall-clock time (epoch s)."""
        rows = batch.telemetry
        if not rows:
            return
        now = datetime.fromtimestamp(committed_at, UTC)
        self.samples.extend([(committed_at, (now - rec.time).total_seconds())
                             for rec in rows[self._skip::self._every]])
        self._skip = (self._skip - len(rows)) % self._every
        if len(self.samples) >= self._max:
            del self.samples[1::2]
            self._every *= 2
