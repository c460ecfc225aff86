"""After start-up the heap is frozen and young passes are rarer, yet cyclic garbage is still collected."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from runtime.heap import YOUNG_THRESHOLD, freeze_startup_heap


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.set_threshold(*threshold)
    gc.unfreeze()


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_a_frozen_service_collects_young_garbage_less_often_but_still_collects_it(restored_collector: None) -> None:
    gc.set_threshold(700, 10, 10)
    freeze_startup_heap()
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
    assert gc.get_freeze_count() > 0
    first, second = Node(), Node()
    first.other, second.other = second, first  # a cycle: only the collector frees it
    alive = weakref.ref(first)
    del first, second
    kept: list[list[int]] = [[] for _ in range(3 * YOUNG_THRESHOLD)]  # tracked objects that live: the young count grows
    assert alive() is None
    del kept


def test_a_higher_threshold_or_a_collector_turned_off_is_left_as_it_is(restored_collector: None) -> None:
    gc.set_threshold(50_000, 20, 20)
    freeze_startup_heap()
    assert gc.get_threshold() == (50_000, 20, 20)
    gc.set_threshold(0, 10, 10)
    freeze_startup_heap()
    assert gc.get_threshold()[0] == 0
