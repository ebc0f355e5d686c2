"""Request and response classes by API key and version, from kio's generated schema."""

from __future__ import annotations

import dataclasses
import functools
import io
from collections.abc import Callable
from types import ModuleType
from typing import Any

from kio.index import load_payload_module
from kio.schema.index import api_key_map
from kio.serial import entity_reader, entity_writer
from kio.static.constants import EntityType


@functools.cache
def request_module(api_key: int, version: int) -> ModuleType:
    return load_payload_module(api_key, version, EntityType.request)


@functools.cache
def response_module(api_key: int, version: int) -> ModuleType:
    return load_payload_module(api_key, version, EntityType.response)


def _payload_class(module: ModuleType, kind: EntityType) -> Any:
    for value in vars(module).values():
        if isinstance(value, type) and getattr(value, "__type__", None) is kind:
            return value
    raise LookupError(f"no {kind.name} class in {module.__name__}")


@functools.cache
def request_class(api_key: int, version: int) -> Any:
    return _payload_class(request_module(api_key, version), EntityType.request)


@functools.cache
def response_class(api_key: int, version: int) -> Any:
    return _payload_class(response_module(api_key, version), EntityType.response)


@functools.cache
def request_reader(api_key: int, version: int) -> Callable[[bytes, int], tuple[Any, int]]:
    reader: Callable[[bytes, int], tuple[Any, int]] = entity_reader(request_class(api_key, version))
    return reader


@functools.cache
def response_reader(api_key: int, version: int) -> Callable[[bytes, int], tuple[Any, int]]:
    reader: Callable[[bytes, int], tuple[Any, int]] = entity_reader(
        response_class(api_key, version)
    )
    return reader


@functools.cache
def _writer(cls: Any) -> Callable[[io.BytesIO, Any], None]:
    writer: Callable[[io.BytesIO, Any], None] = entity_writer(cls)
    return writer


def encode(entity: Any) -> bytes:
    """Encode a kio entity (any request, response or nested struct) to bytes."""
    buffer = io.BytesIO()
    cls: Any = type(entity)
    _writer(cls)(buffer, entity)
    return buffer.getvalue()


def api_name(api_key: int) -> str:
    return "".join(part.title() for part in api_key_map.get(api_key, f"api_{api_key}").split("_"))


@functools.cache
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


def build(cls: type, **values: Any) -> Any:
    """Instantiate a versioned kio class, dropping the fields this version does not have.

    Handlers describe a response once with every field any version carries; each version's
    class keeps what it knows, so one handler serves the whole version range.
    """
    names = _field_names(cls)
    return cls(**{k: v for k, v in values.items() if k in names})


def nested(module: ModuleType, name: str) -> Any:
    """The nested struct `name` of one version's schema module."""
    cls = getattr(module, name, None)
    if cls is None:
        raise LookupError(f"{module.__name__} has no {name}")
    return cls
