"""Thousands of malformed frames at a live broker while a well-behaved client uses it.

Every bad connection is answered or closed, never left hanging; the broker never crashes
and logs no internal error; the well-behaved producer and consumer lose nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from confluent_kafka.admin import AdminClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from brokers.protocol.framing import encode_request
from kafkaweb.cluster import Cluster
from tests.compat.confluent import create_topic
from tests.compat.records import assert_read_back
from tests.compat.traffic import Traffic
from tests.fuzz.frames import (
    ANSWER,
    CLOSE,
    Corpus,
    Frame,
    Target,
    corrupt_batch,
    garbage_body,
    huge_size,
    mutated_seed,
    random_bytes,
    seed_as_is,
    truncated,
    unknown_api_key,
    unsupported_version,
    wrong_size,
)
from tests.protocol.raw import build_request

pytestmark = pytest.mark.cluster

MIN_FRAMES = 10_000
EXAMPLES = 2_000
ANSWER_TIMEOUT_S = 30.0
PROBE_ID = 2**31 - 7
CHECKED_IDS = 0x4B1D_0000
_SIZE = struct.Struct(">i")
PROBE = encode_request(18, 0, PROBE_ID, "fuzz-probe", build_request(18, 0))


class Hang(AssertionError):
    """The broker neither answered nor closed in time."""


@dataclass
class Exchange:
    responses: dict[int, bytes] = field(default_factory=dict)
    closed: bool = False


def _read_exactly(sock: socket.socket, count: int) -> bytes | None:
    chunks = []
    while count:
        try:
            chunk = sock.recv(count)
        except ConnectionResetError:
            return None
        except TimeoutError as exc:
            raise Hang("no answer and no close") from exc
        if not chunk:
            return None
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


def exchange(address: tuple[str, int], frames: list[Frame]) -> Exchange:
    """Send the frames on a new connection and read until the probe's answer or a close."""
    result = Exchange()
    last = frames[-1]
    data = b"".join(f.data for f in frames)
    with socket.create_connection(address, timeout=ANSWER_TIMEOUT_S) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data if last.last else data + PROBE)
            if last.last and not last.closes_at_once:
                # The broker waits for the rest of a frame: end the stream, as a client that
                # went away would. It may have closed already (an earlier bad frame), and
                # then the socket is no longer connected.
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_WR)
        while True:
            header = _read_exactly(sock, 4)
            if header is None:
                result.closed = True
                return result
            (size,) = _SIZE.unpack(header)
            frame = _read_exactly(sock, size)
            if frame is None:
                result.closed = True
                return result
            (correlation_id,) = _SIZE.unpack_from(frame)
            if correlation_id == PROBE_ID:
                return result
            result.responses[correlation_id] = frame


def check(frames: list[Frame], result: Exchange) -> None:
    expectations = {f.expect for f in frames}
    if CLOSE in expectations:
        assert result.closed, f"still open after {[f.what for f in frames if f.expect == CLOSE]}"
    if expectations == {ANSWER} and not frames[-1].last:
        assert not result.closed, f"closed after {[f.what for f in frames]}"
    for frame in frames:
        if frame.expect != ANSWER or frame.correlation_id is None:
            continue
        response = result.responses.get(frame.correlation_id)
        if response is None:
            # Only a close that a later frame caused may take an answer away.
            assert result.closed and expectations != {ANSWER}, f"no answer to {frame.what}"
            continue
        if frame.check is not None:
            frame.check(response)


def numbered(frame: Frame, number: int) -> Frame:
    """A frame whose answer is checked gets a correlation id of its own on the connection."""
    if frame.correlation_id is None:
        return frame
    correlation_id = CHECKED_IDS + number  # far from the seeds' 0 that mutated frames keep
    data = frame.data[:8] + _SIZE.pack(correlation_id) + frame.data[12:]
    return dataclasses.replace(frame, data=data, correlation_id=correlation_id)


def connections(corpus: Corpus) -> st.SearchStrategy[list[Frame]]:
    answered = st.one_of(seed_as_is(corpus), unsupported_version(corpus), corrupt_batch(corpus))
    anything = st.one_of(
        answered,
        mutated_seed(corpus),
        mutated_seed(corpus),
        garbage_body(corpus),
        unknown_api_key(corpus),
        unsupported_version(corpus),
        corrupt_batch(corpus),
    )
    ending = st.one_of(truncated(corpus), wrong_size(corpus), huge_size(corpus), random_bytes())
    return st.one_of(
        # Frames the broker must answer, all of them, on a connection it keeps open.
        st.lists(answered, min_size=1, max_size=12),
        # Anything, possibly ending in a frame that never completes.
        st.tuples(
            st.lists(anything, min_size=1, max_size=14),
            st.none() | ending,
        ).map(lambda t: t[0] + ([t[1]] if t[1] is not None else [])),
        # A few good frames, then one the broker must close on.
        st.tuples(st.lists(answered, max_size=6), ending).map(lambda t: [*t[0], t[1]]),
    )


@contextlib.contextmanager
def half_open_connections(address: tuple[str, int], count: int) -> Iterator[None]:
    """Connections that start a frame and never finish it, held open during the fuzzing."""
    socks = []
    try:
        for number in range(count):
            sock = socket.create_connection(address, timeout=10)
            declared = 50_000_000 if number % 2 else 64
            sock.sendall(_SIZE.pack(declared) + b"\x00\x03\x00\x0c")
            socks.append(sock)
        yield
    finally:
        for sock in socks:
            sock.close()


def test_bad_frames_never_hurt_the_broker(fuzz_cluster: Cluster, target: Target) -> None:
    address = fuzz_cluster.spec.broker_address(1)
    corpus = Corpus(target)
    bootstrap = fuzz_cluster.spec.bootstrap_servers
    good_topic = create_topic(
        AdminClient({"bootstrap.servers": bootstrap}), name="well-behaved", replication=1
    )
    traffic = Traffic(bootstrap, good_topic)
    sent_frames = 0

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(connections(corpus))
    def throw(frames: list[Frame]) -> None:
        nonlocal sent_frames
        sent_frames += len(frames)
        frames = [numbered(frame, n) for n, frame in enumerate(frames)]
        check(frames, exchange(address, frames))

    with half_open_connections(address, 40):
        traffic.start()
        traffic.progress(200)
        throw()
        # The well-behaved clients kept going while all of that was thrown.
        traffic.progress(200)
        traffic.finish()

    assert sent_frames >= MIN_FRAMES, sent_frames
    assert not traffic.failed, traffic.failed[:3]
    assert len(traffic.delivered) == len(traffic.sent)
    assert_read_back(traffic.sent, traffic.consumed)
    assert fuzz_cluster.processes["broker-1"].running
    log = (fuzz_cluster.log_dir / "broker-1.log").read_text(errors="replace")
    assert "internal error" not in log and "Traceback" not in log, _excerpt(log)


def _excerpt(log: str) -> str:
    at = min(i for i in (log.find("internal error"), log.find("Traceback")) if i >= 0)
    return log[max(0, at - 2000) : at + 4000]
