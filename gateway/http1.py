"""The gateway's upstream HTTP/1.1 pool now lives in :mod:`runtime.http1`, shared with every tier's outbound calls.

Re-exported here so the gateway's modules keep their import; new code imports ``runtime.http1``.
"""

from runtime.http1 import (
    MAX_RESPONSE_BYTES,
    ConnectFailed,
    ConnectionDropped,
    ConnectTimedOut,
    Http1Pool,
    PoolSaturated,
    Response,
    ResponseTimedOut,
    UpstreamError,
)

__all__ = ["MAX_RESPONSE_BYTES", "ConnectFailed", "ConnectTimedOut", "ConnectionDropped", "Http1Pool",
           "PoolSaturated", "Response", "ResponseTimedOut", "UpstreamError"]
