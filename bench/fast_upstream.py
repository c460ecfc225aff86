"""A fast upstream for when nginx is not installed: a bare ASGI app returning a fixed JSON body."""

from __future__ import annotations

import os
from typing import Any

import uvicorn

BODY = os.environ.get("UPSTREAM_BODY", '{"items":[],"next_cursor":null}').encode()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["UPSTREAM_PORT"]), log_level="warning",
                access_log=False, http="httptools", loop="uvloop", lifespan="off")
