"""An export makes its next chunk while the current one is sent, and never more than one ahead."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

from gateway.streaming import ExportBudget, ExportStream


def test_the_next_chunk_is_made_while_this_one_is_sent_and_no_further() -> None:
    made: list[int] = []
    events = [threading.Event() for _ in range(5)]

    def chunks() -> Iterator[bytes]:
        for i in range(4):
            made.append(i)
            events[i].set()
            yield f"{i}\n".encode()

    async def scenario() -> list[bytes]:
        budget = ExportBudget(1, idle_timeout_s=5.0)
        try:
            stream = await budget.start(chunks(), media_type="application/x-ndjson", headers={})
            assert isinstance(stream, ExportStream)
            assert made == [0]  # the first chunk is read before the response starts
            body = stream.iterator
            sent = [await body.__anext__()]  # type: ignore[union-attr]
            # The client has chunk 0; chunk 1 is made without being asked for, chunk 2 is not.
            assert await asyncio.to_thread(events[1].wait, 5)
            assert not await asyncio.to_thread(events[2].wait, 0.2)
            assert made == [0, 1]
            sent += [chunk async for chunk in body]  # type: ignore[union-attr]
            assert budget.running == 0  # the end released the slot
            return sent
        finally:
            budget.shutdown()

    assert asyncio.run(scenario()) == [b"0\n", b"1\n", b"2\n", b"3\n"]
