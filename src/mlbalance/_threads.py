"""Overlap producing items with consuming them: a bounded background-thread prefetch."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["prefetch"]


def prefetch(
    items: Iterable[T], depth: int = 2, *, name: str = "mlbalance-prefetch"
) -> Iterator[T]:
    """Iterate *items* in a background thread, at most *depth* items ahead of the consumer.

    The producer's exceptions are raised in the consumer. When the consumer stops early (an
    exception, ``break``, or the generator being closed), the producer stops at its next item,
    and a producer blocked on a full queue is released.

    Parameters
    ----------
    items : iterable
        Evaluated in the background thread (e.g. reading input batches, tokenising).
    depth : int, default 2
        Items produced ahead.
    name : str
        The thread's name (shows in debuggers and py-spy).
    """
    q: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            q.put(exc)

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)
