"""Array counts checked against the bytes that follow, before kio decodes a request.

kio's native reader reserves room for an array's declared count before reading its
elements; a count near 2**31 (or 2**32 for a compact array) in a ten-byte frame makes that
allocation fail, and a failed allocation aborts the whole broker process. Kafka's own parser
refuses such counts ("Tried to allocate a collection of size N, but there are only M bytes
remaining"), and so does this check: it walks a request as kio would, without building
anything, and raises `LengthError` at the first count larger than the bytes left. It also
refuses a null array where the schema allows none, which kio would hand over as None.
"""

from __future__ import annotations

import dataclasses
import functools
import struct
import typing
from types import UnionType
from typing import Any

_FIXED = {
    "bool": 1,
    "int8": 1,
    "int16": 2,
    "int32": 4,
    "int64": 8,
    "uint16": 2,
    "uint32": 4,
    "float64": 8,
    "uuid": 16,
    "timedelta_i32": 4,
    "timedelta_i64": 8,
    "datetime_i64": 8,
    "error_code": 2,
}
_STRINGS = frozenset({"string"})
_BYTES = frozenset({"bytes", "records"})
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")

# Program steps, for a struct of a flexible (compact) or legacy version:
#   (SKIP, size)                           fixed-size fields
#   (SIZED, prefix)                        a string or bytes: prefix 0 compact, 2 or 4 bytes
#   (STRUCT, program)
#   (ARRAY, compact, nullable, element)    element: an int size, a sized prefix, or a program
#   (TAGS, {tag: program})                 a flexible struct's tagged fields
SKIP, SIZED, STRUCT, ARRAY, TAGS = range(5)
COMPACT = 0
Step = tuple[Any, ...]
Program = tuple[Step, ...]


class LengthError(ValueError):
    """A declared length or count runs past the end of the request."""


class UnknownTaggedField(Exception):
    """A tagged field this codec does not know (a newer client's): Kafka skips those."""


# Bytes [begin, end) of a request to replace with other bytes.
Edit = tuple[int, int, bytes]


def _element_step(hint: Any, kafka_type: str | None, compact: bool) -> Step:
    if kafka_type in _FIXED:
        return (SKIP, _FIXED[kafka_type])
    if kafka_type in _STRINGS:
        return (SIZED, COMPACT if compact else 2)
    if kafka_type in _BYTES:
        return (SIZED, COMPACT if compact else 4)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return (STRUCT, program(hint))
    raise TypeError(f"no wire layout for {hint!r} ({kafka_type})")


def _field_step(hint: Any, kafka_type: str | None, compact: bool) -> Step:
    nullable = False
    if typing.get_origin(hint) in (typing.Union, UnionType):
        nullable = True
        (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is not tuple:
        return _element_step(hint, kafka_type, compact)
    element = _element_step(typing.get_args(hint)[0], kafka_type, compact)
    return (ARRAY, compact, nullable, element)


@functools.cache
def program(cls: type) -> Program:
    """How to walk one struct: its fields in order, then (flexible versions) its tags."""
    compact = bool(getattr(cls, "__flexible__", False))
    hints = typing.get_type_hints(cls)
    steps: list[Step] = []
    tagged: dict[int, Program] = {}
    for field in dataclasses.fields(cls):
        step = _field_step(hints[field.name], field.metadata.get("kafka_type"), compact)
        if "tag" in field.metadata:
            tagged[field.metadata["tag"]] = (step,)
        elif step[0] == SKIP and steps and steps[-1][0] == SKIP:
            steps[-1] = (SKIP, steps[-1][1] + step[1])
        else:
            steps.append(step)
    if compact:
        steps.append((TAGS, tagged))
    return tuple(steps)


def _uvarint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    for index in range(position, min(position + 5, len(data))):
        byte = data[index]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, index + 1
        shift += 7
    raise LengthError(f"bad unsigned varint at {position}")


def _sized(data: bytes, position: int, end: int, prefix: int) -> int:
    """Past a string or bytes field; its length is kio's to check."""
    if prefix == COMPACT:
        if position < end and data[position] < 0x80:
            size = data[position]
            return position + (size if size else 1)
        size, position = _uvarint(data, position)
        return position + (size - 1 if size else 0)
    if position + prefix > end:
        raise LengthError("a length prefix runs past the end of the request")
    (size,) = (_INT16 if prefix == 2 else _INT32).unpack_from(data, position)
    return position + prefix + max(size, 0)


def _count(data: bytes, position: int, end: int, compact: bool, nullable: bool) -> tuple[int, int]:
    """An array's element count, checked against the bytes left (0 when null)."""
    if compact:
        if position < end and data[position] < 0x80:
            count, position = data[position] - 1, position + 1
        else:
            count, position = _uvarint(data, position)
            count -= 1
    else:
        if position + 4 > end:
            raise LengthError("an array count runs past the end of the request")
        (count,) = _INT32.unpack_from(data, position)
        position += 4
    if count > end - position:
        raise LengthError(f"an array of {count} elements with {end - position} bytes remaining")
    if count < 0:
        if not nullable:
            raise LengthError("a non-nullable array was serialized as null")
        return 0, position
    return count, position


def _walk(
    steps: Program, data: bytes, position: int, end: int, edits: list[Edit] | None = None
) -> int:
    # The hot path of every request: common cases inline, rare ones in helpers.
    for step in steps:
        kind = step[0]
        if kind == SKIP:
            position += step[1]
        elif kind == SIZED:
            if step[1] == COMPACT and position < end and data[position] < 0x80:
                size = data[position]
                position += size if size else 1
            else:
                position = _sized(data, position, end, step[1])
        elif kind == ARRAY:
            if step[1] and position < end and 0 < data[position] < 0x80:
                count = data[position] - 1
                position += 1
                if count > end - position:
                    raise LengthError(
                        f"an array of {count} elements with {end - position} bytes remaining"
                    )
            else:
                count, position = _count(data, position, end, step[1], step[2])
            if count:
                element = step[3]
                if element[0] == SKIP:
                    position += count * element[1]
                elif element[0] == SIZED:
                    for _ in range(count):
                        position = _sized(data, position, end, element[1])
                else:
                    inner = element[1]
                    for _ in range(count):
                        position = _walk(inner, data, position, end, edits)
        elif kind == TAGS:
            if position < end and data[position] == 0:
                position += 1
            else:
                position = _tags(step[1], data, position, end, edits)
        else:
            position = _walk(step[1], data, position, end, edits)
        if position > end:
            raise LengthError(f"the request ends {position - end} bytes early")
    return position


def _tags(
    known: dict[int, Program], data: bytes, position: int, end: int, edits: list[Edit] | None
) -> int:
    start = position
    count, position = _uvarint(data, position) if position < end else (0, position)
    count_end = position
    unknown = 0
    for _ in range(count):
        field_start = position
        tag, position = _uvarint(data, position)
        size, position = _uvarint(data, position)
        tagged = known.get(tag)
        if tagged is not None:
            _walk(tagged, data, position, position + size, edits)
        elif edits is None:
            raise UnknownTaggedField(tag)
        else:
            edits.append((field_start, position + size, b""))
            unknown += 1
        position += size
    if unknown and edits is not None:
        edits.append((start, count_end, _encode_uvarint(count - unknown)))
    return position


def _encode_uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def check(request_class: type, data: bytes, position: int) -> int:
    """Where a request's body ends; LengthError if it declares more than its bytes can hold,
    or a null where Kafka allows none; UnknownTaggedField if a tag is new to this codec."""
    return _walk(program(request_class), data, position, len(data))


def without_unknown_tags(request_class: type, data: bytes, position: int) -> bytes:
    """The request with the tagged fields this codec does not know left out, as Kafka skips
    them; kio refuses a tag it does not know."""
    edits: list[Edit] = []
    _walk(program(request_class), data, position, len(data), edits)
    out = []
    cursor = 0
    for begin, finish, replacement in sorted(edits):
        out.append(data[cursor:begin])
        out.append(replacement)
        cursor = finish
    out.append(data[cursor:])
    return b"".join(out)
