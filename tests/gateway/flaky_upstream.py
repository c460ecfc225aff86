"""A real upstream that misbehaves on request: slow answers or dropped connections (``python flaky_upstream.py PORT``).

Control: ``PUT /_control`` with ``{"mode": "ok" | "slow", "drop_next": n, "healthy": bool}``; ``GET /_control`` ->
hit counts. ``healthy: false`` makes ``/healthz`` answer 503; ``fail_with: 503`` answers every call with that status
as problem+json, naming a ``downstream`` (a failure relayed from the upstream's own dependency) when ``relay``.
Any other path answers like the PSA system API's getProject (enough for the gateway's contract checks).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = {"mode": "ok", "drop_next": 0, "hits": 0, "slow_seconds": 2.0, "healthy": True,
         "fail_with": 0, "relay": False}
LOCK = threading.Lock()
PROJECT = {"id": "prj_4001", "external_ids": {"psa": "501"}, "name": "Contoso Retail: Pricing",
           "contract_id": "ctr_2001", "customer_id": "cus_1001", "legal_entity_id": "le_us", "status": "active",
           "billing_model": "time_and_materials", "budget_hours": "800", "manager_id": "wrk_e1002",
           "business_unit_id": "bu_str", "start_date": "2026-08-01", "end_date": "2027-03-23"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_PUT(self) -> None:
        if self.path == "/_control":
            with LOCK:
                STATE.update(json.loads(self._body()))
            self._send(200, STATE)
            return
        self._serve()

    def do_GET(self) -> None:
        if self.path == "/healthz":
            with LOCK:
                healthy = STATE["healthy"]
            self._send(200 if healthy else 503, {"status": "ok" if healthy else "failing"})
            return
        if self.path == "/_control":
            with LOCK:
                self._send(200, STATE)
            return
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        self._body()
        with LOCK:
            STATE["hits"] += 1
            drop = STATE["drop_next"] > 0
            if drop:
                STATE["drop_next"] -= 1
            mode, slow = STATE["mode"], STATE["slow_seconds"]
            fail_with, relay = STATE["fail_with"], STATE["relay"]
        if drop:
            self.close_connection = True  # hang up without an answer, as a crashed upstream would
            return
        if mode == "slow":
            time.sleep(slow)
        if fail_with:
            problem = {"type": "/catalog/problems/downstream-unavailable", "title": "Unavailable", "status": fail_with}
            if relay:
                problem["downstream"] = "psa-sandbox"
            data = json.dumps(problem).encode()
            self.send_response(fail_with)
            self.send_header("Content-Type", "application/problem+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self._send(200, PROJECT)


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
