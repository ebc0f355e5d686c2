"""Where a crash leaves a group: committed offsets decide what the next consumer gets."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.groups.conftest import (
    ConfluentMember,
    Member,
    Worker,
    group_id,
    produce,
    wait_until,
)

pytestmark = pytest.mark.cluster
RECORDS = 30


def resume(bootstrap: str, group: str, topic: str, members: list[Member], expect: int) -> list[int]:
    """What a fresh member of the group reads once the crashed one has left the group."""
    member = ConfluentMember(bootstrap, group, topic, **{"session.timeout.ms": 3000})
    members.append(member.start())
    wait_until(lambda: len(member.values) >= expect, what=f"{expect} records after the crash")
    return [int(v) for v in member.values]


def test_at_least_once_a_crash_before_commit_redelivers(
    bootstrap: str, new_topic: Callable[..., str], members: list[Member]
) -> None:
    topic = new_topic(1)
    group = group_id()
    produce(bootstrap, topic, RECORDS, 1)
    worker = Worker(
        "--bootstrap", bootstrap, "--topic", topic, "--group", group, "--mode", "at-least-once",
        "--commit-after", "10", "--crash-after", "20", "--session-timeout-ms", "3000",
    )  # fmt: skip
    assert worker.wait() != 0
    assert worker.values("processed") == [str(i) for i in range(20)]
    assert worker.values("committed") == [10]

    # Records 10..19 were processed but not committed: they come again, 0..9 do not.
    assert resume(bootstrap, group, topic, members, RECORDS - 10) == list(range(10, RECORDS))


def test_at_most_once_a_crash_after_commit_loses_the_batch(
    bootstrap: str, new_topic: Callable[..., str], members: list[Member]
) -> None:
    topic = new_topic(1)
    group = group_id()
    produce(bootstrap, topic, RECORDS, 1)
    worker = Worker(
        "--bootstrap", bootstrap, "--topic", topic, "--group", group, "--mode", "at-most-once",
        "--crash-after", "10", "--session-timeout-ms", "3000",
    )  # fmt: skip
    assert worker.wait() != 0
    assert worker.values("committed") == [10]
    assert worker.values("processed") == []

    # The batch was committed before it was processed: it is never delivered again.
    assert resume(bootstrap, group, topic, members, RECORDS - 10) == list(range(10, RECORDS))
