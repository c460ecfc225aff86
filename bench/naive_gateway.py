"""The naive baseline from issue 9: how a straightforward Python gateway is usually written.

Litestar + uvicorn, authlib JWT verification with the key loaded once, a Redis fixed-window counter
(INCR + EXPIRE, two round trips), and one shared httpx.AsyncClient to the upstream. Run by bench/gateway.py.
"""

from __future__ import annotations

import os
import time
from typing import Any

import httpx
import redis.asyncio as redis
import uvicorn
from authlib.jose import JsonWebKey, jwt
from authlib.jose.errors import JoseError
from litestar import Litestar, Request, Response, route
from litestar.params import FromPath

UPSTREAM = os.environ["NAIVE_UPSTREAM"]
PUBLIC_KEY = JsonWebKey.import_key(open(os.environ["NAIVE_PUBLIC_KEY"]).read(), {"kty": "RSA"})  # noqa: SIM115
LIMIT_PER_MINUTE = 10_000_000
client: httpx.AsyncClient | None = None
store = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))


@route("/{path:path}", http_method=["GET", "POST"])
async def proxy(request: Request[Any, Any, Any], path: FromPath[str]) -> Response[bytes]:
    global client
    if client is None:
        client = httpx.AsyncClient(base_url=UPSTREAM, timeout=10.0)
    authorization = request.headers.get("authorization", "")
    try:
        claims = jwt.decode(authorization.removeprefix("Bearer "), PUBLIC_KEY)
        claims.validate()
    except (JoseError, ValueError):
        return Response(b'{"error":"unauthorized"}', status_code=401)
    window = f"naive:{claims['client_id']}:{int(time.time() // 60)}"
    count = await store.incr(window)
    await store.expire(window, 60)
    if count > LIMIT_PER_MINUTE:
        return Response(b'{"error":"rate limited"}', status_code=429)
    upstream = await client.request(request.method, "/" + path, content=await request.body())
    return Response(upstream.content, status_code=upstream.status_code,
                    media_type=upstream.headers.get("content-type"))


app = Litestar([proxy], openapi_config=None)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["NAIVE_PORT"]), log_level="warning", access_log=False)
