"""A full disk: the append fails with KAFKA_STORAGE_ERROR, nothing is lost, and appends resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from brokers.log.config import LogConfig
from brokers.log.errors import KafkaStorageError
from brokers.log.log import Log
from tests.log.conftest import batches_of, make_batch, read_all

REPO = Path(__file__).resolve().parents[2]
BATCH = make_batch(4, value_size=2500)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path | None]:
    """A 1 MB tmpfs, or None where mounting is not permitted."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        yield None
        return
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def open_log(dir: Path) -> Log:
    return Log.open(
        dir,
        LogConfig(),
        topic_id=None,
        recovery_point=0,
        log_start_offset=None,
        high_watermark=None,
        had_clean_shutdown=False,
    )


def test_full_disk_fails_the_append_and_keeps_the_log(small_disk: Path | None) -> None:
    if small_disk is None:
        check_rlimit_story()
        return
    filler = small_disk / "filler"
    filler.write_bytes(b"\x00" * 300_000)
    log = open_log(small_disk / "orders-0")
    ends: list[int] = []
    with pytest.raises(KafkaStorageError) as caught:
        for _ in range(1000):
            ends.append(log.append_as_leader(BATCH, 0).last_offset + 1)
    assert caught.value.error_code == 56
    end = ends[-1]
    assert log.log_end_offset == end
    assert log.size_in_bytes == len(BATCH) * len(ends)
    assert batches_of(read_all(log))[-1][1] == end - 1

    filler.unlink()
    info = log.append_as_leader(BATCH, 0)
    assert info.base_offset == end
    assert batches_of(read_all(log)) == [(o, o + 3) for o in range(0, end + 4, 4)]
    log.close()
    assert open_log(small_disk / "orders-0").log_end_offset == end + 4


# Where tmpfs cannot be mounted: the same story with RLIMIT_FSIZE (EFBIG instead of ENOSPC).
RLIMIT_WRITER = """
import json, resource, signal, tempfile
from pathlib import Path
from brokers.log.config import LogConfig
from brokers.log.errors import KafkaStorageError
from brokers.log.log import Log
from tests.log.conftest import batches_of, make_batch, read_all

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
batch = make_batch(4, value_size=2500)
root = Path(tempfile.mkdtemp())
log = Log.open(root / "orders-0", LogConfig(), topic_id=None, recovery_point=0,
               log_start_offset=None, high_watermark=None, had_clean_shutdown=False)
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (len(batch) * 20 + len(batch) // 2, hard))
outcome = {}
try:
    while True:
        outcome["end_before_failure"] = log.append_as_leader(batch, 0).last_offset + 1
except KafkaStorageError as exc:
    outcome["error_code"] = exc.error_code
outcome["end_after_failure"] = log.log_end_offset
outcome["readable"] = batches_of(read_all(log))[-1][1] + 1
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
outcome["resumed_at"] = log.append_as_leader(batch, 0).base_offset
print(json.dumps(outcome))
"""


def check_rlimit_story() -> None:
    outcome = json.loads(
        subprocess.run(
            [sys.executable, "-c", RLIMIT_WRITER],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            cwd=REPO,
        ).stdout
    )
    assert outcome["error_code"] == 56
    assert outcome["end_after_failure"] == outcome["end_before_failure"] == 80
    assert outcome["readable"] == 80
    assert outcome["resumed_at"] == 80


def test_a_file_size_limit_tells_the_same_story() -> None:
    check_rlimit_story()
