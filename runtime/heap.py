"""Short garbage-collector pauses for long-running services.

CPython's full (generation 2) collection walks every object the collector tracks. After start-up a service
holds a large heap that lives as long as the process (framework, compiled contracts and schemas): about 270,000
objects in the gateway, so each full pass stopped the event loop for 80-170 ms, which every call in flight paid
(the p99 of bench/gateway.py). Freezing the start-up heap (``gc.freeze``, which CPython documents for this)
leaves full passes only the objects made since. Frozen objects are still freed by reference counting; only
a reference cycle among them is never collected, which is why this runs once start-up is done, not per reload.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collect once, then move every surviving object to the permanent generation. Call when start-up (or a
    large warm-up) is done; calling again freezes what was built since."""
    gc.collect()
    gc.freeze()
