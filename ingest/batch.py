"""Pure batching logic: collect records and acknowledgement tokens, flush by size or age."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.records import DeadLetter, EventRecord, Record, StatusRecord, TelemetryRecord


@dataclass
class Batch:
    """Rows for each table plus the message tokens to acknowledge once they are committed."""

    telemetry: list[TelemetryRecord] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    status: list[StatusRecord] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    started: float | None = None

    @property
    def rows(self) -> int:
        """Rows in the batch, all tables together."""
        return len(self.telemetry) + len(self.events) + len(self.status) + len(self.dead_letters)

    def __len__(self) -> int:
        return self.rows


class Batcher:
    """Accumulates records; tells when a flush is due (`max_rows` or `max_age_s`)."""

    def __init__(self, max_rows: int, max_age_s: float) -> None:
        self.max_rows = max_rows
        self.max_age_s = max_age_s
        self._batch = Batch()

    def add(self, records: tuple[Record, ...] | list[Record], token: int | None, now: float
            ) -> None:
        """Add one message's records and its acknowledgement token."""
        b = self._batch
        if b.started is None:
            b.started = now
        for rec in records:
            if isinstance(rec, TelemetryRecord):
                b.telemetry.append(rec)
            elif isinstance(rec, EventRecord):
                b.events.append(rec)
            else:
                b.status.append(rec)
        if token is not None:
            b.tokens.append(token)

    def add_dead_letter(self, letter: DeadLetter, token: int | None, now: float) -> None:
        """Add a dead letter and its acknowledgement token."""
        b = self._batch
        if b.started is None:
            b.started = now
        b.dead_letters.append(letter)
        if token is not None:
            b.tokens.append(token)

    def due(self, now: float) -> bool:
        """True when the batch should be flushed now."""
        b = self._batch
        if b.started is None:
            return False
        return b.rows >= self.max_rows or now - b.started >= self.max_age_s

    def wait_time(self, now: float) -> float | None:
        """Seconds until the batch is due by age, None when empty."""
        if self._batch.started is None:
            return None
        return max(0.0, self.max_age_s - (now - self._batch.started))

    def take(self) -> Batch:
        """Hand over the current batch and start a new one."""
        batch, self._batch = self._batch, Batch()
        return batch

    @property
    def pending(self) -> int:
        """Rows (and tokens) waiting in the current batch."""
        return max(self._batch.rows, len(self._batch.tokens))
