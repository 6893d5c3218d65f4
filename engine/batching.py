"""Micro-batching: concurrent requests gathered into one call of an expensive function.

A served model pays a fixed cost per call in its expensive members (the
sentence encoder, Keras), so one call on 1,000 rows is far cheaper than 1,000
calls on one row each. :class:`MicroBatcher` queues what concurrent requests
submit, waits a few milliseconds for more, runs one call in a worker thread
and hands each request its own slice of the answer. Calls run one at a time:
while one runs, the next batch gathers in the queue, so batches grow with load.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Item:
    key: Hashable
    part: Any
    n_rows: int
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    """Run ``run(key, parts)`` on batches of parts that concurrent callers submit.

    Parameters
    ----------
    run : callable
        ``run(key, parts) -> results``: one result per part, in order. Called in
        a single worker thread, never twice at once, with parts of one ``key``.
    max_rows : int, default=1024
        A batch stops growing once it holds this many rows (a larger part runs alone).
    max_wait : float, default=0.005
        Seconds to wait for more parts after the first one arrives.

    Attributes
    ----------
    stats : dict
        ``batches``, ``rows`` and ``largest`` batch so far.

    Examples
    --------
    >>> import asyncio
    >>> async def main():
    ...     batcher = MicroBatcher(lambda key, parts: [sum(p) for p in parts])
    ...     async with batcher:
    ...         return await asyncio.gather(batcher.submit("k", [1, 2], 2),
    ...                                     batcher.submit("k", [3], 1))
    >>> asyncio.run(main())
    [3, 3]
    """

    def __init__(self, run: Callable[[Hashable, Sequence[Any]], Sequence[Any]], *,
                 max_rows: int = 1024, max_wait: float = 0.005) -> None:
        self.run = run
        self.max_rows = max_rows
        self.max_wait = max_wait
        self.stats = {"batches": 0, "rows": 0, "largest": 0}
        self._queue: asyncio.Queue[_Item] | None = None
        self._held: deque[_Item] = deque()
        self._task: asyncio.Task | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    async def start(self) -> None:
        """Start the batching loop on the running event loop."""
        self._queue = asyncio.Queue()
        # one thread: the model is called by one batch at a time (thread safety of
        # every member is not promised), and each call already uses every core
        self._executor = concurrent.futures.ThreadPoolExecutor(1, "ensemble-predict")
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop the loop; parts still waiting fail with RuntimeError."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        waiting = list(self._held)
        while self._queue is not None and not self._queue.empty():
            waiting.append(self._queue.get_nowait())
        for item in waiting:
            if not item.future.done():
                item.future.set_exception(RuntimeError("the server is shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._task = self._executor = None

    async def __aenter__(self) -> MicroBatcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def submit(self, key: Hashable, part: Any, n_rows: int) -> Any:
        """Queue ``part`` (``n_rows`` rows) and wait for its result.

        Starts the loop when it is not running. Raises what ``run`` raised on
        this part alone: when a batch fails, each of its parts is run again by
        itself, so one bad request fails alone.
        """
        if self._task is None:  # an app mounted in another one gets no lifespan events
            await self.start()
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(key, part, n_rows, future))
        return await future

    async def _next(self, timeout: float | None) -> _Item | None:
        if self._held:
            return self._held.popleft()
        assert self._queue is not None
        if timeout is None:
            return await self._queue.get()
        if timeout <= 0:
            return self._queue.get_nowait() if not self._queue.empty() else None
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            return None

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._next(None)
            batch, rows = [first], first.n_rows
            deadline = time.monotonic() + self.max_wait
            while rows < self.max_rows:
                item = await self._next(deadline - time.monotonic())
                if item is None:
                    break
                if item.key != first.key or rows + item.n_rows > self.max_rows:
                    self._held.append(item)  # first in the next batch
                    break
                batch.append(item)
                rows += item.n_rows
            batch = [item for item in batch if not item.future.cancelled()]
            if batch:
                await self._run_batch(loop, batch, rows)

    async def _run_batch(self, loop: asyncio.AbstractEventLoop, batch: list[_Item],
                         rows: int) -> None:
        self.stats["batches"] += 1
        self.stats["rows"] += rows
        self.stats["largest"] = max(self.stats["largest"], rows)
        try:
            results = await loop.run_in_executor(self._executor, self.run, batch[0].key,
                                                 [item.part for item in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0], exception=exc)
                return
            for item in batch:  # find the part that failed; the others still get answers
                try:
                    result = await loop.run_in_executor(self._executor, self.run, item.key,
                                                        [item.part])
                except Exception as single:
                    _settle(item, exception=single)
                else:
                    _settle(item, result=result[0])
            return
        for item, result in zip(batch, results, strict=True):
            _settle(item, result=result)


def _settle(item: _Item, result: Any = None, exception: BaseException | None = None) -> None:
    if item.future.done():  # the caller went away (client disconnected)
        return
    if exception is not None:
        item.future.set_exception(exception)
    else:
        item.future.set_result(result)
