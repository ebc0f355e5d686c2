"""Property test: random appends, rolls, truncations, deletes and reopens against a plain model."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from brokers.log.batch import Record, build_batch
from tests.log.conftest import Clock, config, crash, open_log, read_all, records_of

CONFIG = config(segment_bytes=2500, index_interval_bytes=150, segment_index_bytes=64)


class LogMachine(RuleBasedStateMachine):
    """The model: the batches in order as (base offset, last offset, payload)."""

    @initialize()
    def start(self) -> None:
        self.root = Path(tempfile.mkdtemp())
        self.clock = Clock()
        self.log = open_log(self.root / "model-0", CONFIG, clock=self.clock)
        self.batches: list[tuple[int, int, bytes]] = []
        self.end = 0
        self.start_offset = 0
        self.counter = 0

    def teardown(self) -> None:
        if hasattr(self, "log") and not self.log.closed:
            self.log.close()
        if hasattr(self, "root"):
            shutil.rmtree(self.root, ignore_errors=True)

    @rule(sizes=st.lists(st.integers(1, 5), min_size=1, max_size=3), value=st.integers(1, 30))
    def append(self, sizes: list[int], value: int) -> None:
        data = b""
        payloads = []
        for count in sizes:
            self.counter += 1
            payload = b"%d" % self.counter
            payloads.append((count, payload))
            records = [Record(i, self.clock.ms, payload, payload * value) for i in range(count)]
            data += build_batch(records)
        info = self.log.append_as_leader(data, leader_epoch=0)
        assert info.base_offset == self.end
        for count, payload in payloads:
            self.batches.append((self.end, self.end + count - 1, payload))
            self.end += count
        assert info.last_offset == self.end - 1

    @rule()
    def roll(self) -> None:
        self.log.roll()

    @rule(data=st.data())
    def truncate(self, data: st.DataObject) -> None:
        target = data.draw(st.integers(self.start_offset, self.end))
        self.log.truncate_to(target)
        if target >= self.end:
            return
        kept = [b for b in self.batches if b[1] < target]
        straddling = [b for b in self.batches if b[0] < target <= b[1]]
        self.batches = kept
        self.end = straddling[0][0] if straddling else target
        self.start_offset = min(self.start_offset, self.end)

    @rule(data=st.data())
    def delete_records(self, data: st.DataObject) -> None:
        target = data.draw(st.integers(self.start_offset, self.end))
        self.log.high_watermark = self.end
        assert self.log.delete_records_before(target) == target
        self.start_offset = target
        self.batches = [b for b in self.batches if b[1] >= target]

    @rule(clean=st.booleans())
    def reopen(self, clean: bool) -> None:
        if clean:
            self.log.close()
        else:
            self.log.flush()
            crash(self.log)
        self.log = open_log(
            self.root / "model-0",
            CONFIG,
            clock=self.clock,
            clean=clean,
            log_start_offset=self.start_offset,
        )

    @rule(data=st.data())
    def read_one(self, data: st.DataObject) -> None:
        if self.start_offset == self.end:
            assert self.log.read(self.end, 1000) is None
            return
        offset = data.draw(st.integers(self.start_offset, self.end - 1))
        piece = self.log.read(offset, data.draw(st.integers(1, 2000)))
        assert piece is not None
        expected = next(b for b in self.batches if b[1] >= offset)
        assert piece.first_offset == expected[0]
        assert records_of(piece.read_bytes())[0].key == expected[2]

    @invariant()
    def matches_the_model(self) -> None:
        if not hasattr(self, "log"):
            return
        assert self.log.log_end_offset == self.end
        assert self.log.log_start_offset == self.start_offset
        records = records_of(read_all(self.log))
        got = [(r.offset, r.key) for r in records]
        want = [(o, p) for base, last, p in self.batches for o in range(base, last + 1)]
        assert got == want


TestLog = LogMachine.TestCase
TestLog.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)
