"""A served call's inputs are decoded off the service's event loop: a mapped caller's large input (up to 256 MiB of text
in a data frame, or an object store's frame) held the loop that answers every other caller for as long as flytekit's
decoders ran, since they run synchronously inside their coroutines (left open by review R32a; 2026-12-08).

A slow decoder stands in for the large frame: a real flytekit type transformer whose ``to_python_value`` records the
thread it runs on and takes 0.4 s. The served path must run it on another thread while the loop keeps ticking; a call
made in the process itself (not served) still decodes on its own loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flytekit import FlyteContextManager
from flytekit.core.type_engine import TypeEngine, TypeTransformer
from flytekit.models.literals import Literal, LiteralMap, Primitive, Scalar
from flytekit.models.types import LiteralType, SimpleType

DECODE_S = 0.4


class _Slow:
    def __init__(self, text: str) -> None:
        self.text = text


class _SlowTransformer(TypeTransformer[_Slow]):
    def __init__(self) -> None:
        super().__init__("aios-test-slow", _Slow)
        self.threads: list[int] = []
        self.names: list[str] = []

    def get_literal_type(self, t: type[_Slow]) -> LiteralType:
        return LiteralType(simple=SimpleType.STRING)

    def to_literal(self, ctx: Any, python_val: _Slow, python_type: Any, expected: LiteralType) -> Literal:
        return Literal(scalar=Scalar(primitive=Primitive(string_value=python_val.text)))

    def to_python_value(self, ctx: Any, lv: Literal, expected_python_type: Any) -> _Slow:
        self.threads.append(threading.get_ident())
        self.names.append(threading.current_thread().name)
        time.sleep(DECODE_S)  # a decoder's synchronous work (a large frame's Parquet read and conversion)
        return _Slow(lv.scalar.primitive.string_value)


@pytest.fixture
def slow() -> Iterator[_SlowTransformer]:
    transformer = _SlowTransformer()
    TypeEngine.register(transformer)
    try:
        yield transformer
    finally:
        TypeEngine._REGISTRY.pop(_Slow, None)


def _inputs() -> LiteralMap:
    return LiteralMap({"big": Literal(scalar=Scalar(primitive=Primitive(string_value="payload")))})


async def _decode_with_ticker(served: bool) -> tuple[dict[str, Any], int, int]:
    """Decode while a ticker on the same loop counts 10 ms ticks; the values, the ticks and the loop's thread."""
    from flytekitplugins.aios_connectors._literals import to_python

    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)  # the ticker is running before the decode starts
    try:
        values = await to_python(_inputs(), {"big": _Slow}, served=served)
    finally:
        stop.set()
        await task
    return values, ticks, threading.get_ident()


def test_a_served_call_is_decoded_off_the_event_loop_which_keeps_answering(slow: _SlowTransformer) -> None:
    with FlyteContextManager.with_context(FlyteContextManager.current_context().new_builder()):
        values, ticks, loop_thread = asyncio.run(_decode_with_ticker(served=True))
    assert values["big"].text == "payload"
    assert slow.threads and loop_thread not in slow.threads, "the served call was decoded on the service's loop"
    # in the decode pool, not the loop's default one, where the service checks every caller's identity (re-review
    # R36: seven slow calls took the default pool's six threads and another caller waited 127 s)
    assert all(n.startswith("aios-connector-decode") for n in slow.names), slow.names
    # 0.4 s of decoding: the loop answered its other work meanwhile (on the loop it would have ticked once or twice)
    assert ticks >= 10, ticks


def test_a_call_in_the_process_itself_is_decoded_on_its_own_loop(slow: _SlowTransformer) -> None:
    with FlyteContextManager.with_context(FlyteContextManager.current_context().new_builder()):
        values, _, loop_thread = asyncio.run(_decode_with_ticker(served=False))
    assert values["big"].text == "payload"
    assert slow.threads == [loop_thread]
