"""Short garbage-collector pauses for long-running services.

CPython's full (generation 2) collection walks every object the collector tracks. After start-up a service
holds a large heap that lives as long as the process (framework, compiled contracts and schemas): about 270,000
objects in the gateway, so each full pass stopped the event loop for 80-170 ms, which every call in flight paid
(the p99 of bench/gateway.py). Freezing the start-up heap (``gc.freeze``, which CPython documents for this)
leaves full passes only the objects made since. Frozen objects are still freed by reference counting; only
a reference cycle among them is never collected, which is why this runs once start-up is done, not per reload.

Once frozen, the young generation's threshold is raised from 700 to YOUNG_THRESHOLD. A serving process makes
(almost) no cyclic garbage per call, so a young pass finds nothing to free: it only walks the calls in flight
and promotes them. At 700 the gateway ran one every ~30-60 calls under wrk (-c32), ~0.02 ms of CPU per call
in all, each pass a stall of the loop; at 10,000, none in 18,000 calls. The count that triggers a pass is the
growth of tracked objects (allocations minus deallocations), so the young generation still holds at most
~10,000 objects: garbage that does form a cycle (an error path) waits a little longer, bounded as before.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def freeze_startup_heap() -> None:
    """Collect once, then move every surviving object to the permanent generation, and raise the young
    generation's threshold (never lowering one set higher). Call when start-up (or a large warm-up) is done;
    calling again freezes what was built since."""
    gc.collect()
    gc.freeze()
    young, *older = gc.get_threshold()
    if 0 < young < YOUNG_THRESHOLD:  # 0: collection turned off on purpose, left off
        gc.set_threshold(YOUNG_THRESHOLD, *older)
