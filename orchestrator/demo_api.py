"""The bundled demo API: a small shop on 127.0.0.1 that the demo and the tests load-test."""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

PRODUCTS = [
    {"id": i, "name": f"product-{i}", "category": "books" if i % 2 else "games", "price": 5 + i}
    for i in range(1, 41)
]


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class DemoState:
    record: bool = False
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    delay_ms: tuple[float, float] = (1.0, 6.0)


class _Handler(BaseHTTPRequestHandler):
    server: _DemoServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _reply(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        if state.record:
            with state.lock:
                state.requests.append(
                    Recorded(
                        self.command,
                        url.path,
                        parse_qsl(url.query, keep_blank_values=True),
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                    )
                )
        lo, hi = state.delay_ms
        time.sleep(random.uniform(lo, hi) / 1000)
        parts = [p for p in url.path.split("/") if p]
        query = dict(parse_qsl(url.query))
        if url.path == "/health":
            return self._reply(200, {"status": "ok"})
        if parts == ["products"] and self.command == "GET":
            items = [p for p in PRODUCTS if not query.get("category") or p["category"] == query["category"]]
            return self._reply(200, {"items": items[:10], "total": len(items)})
        if len(parts) == 2 and parts[0] == "products" and self.command == "GET":
            found = [p for p in PRODUCTS if str(p["id"]) == parts[1]]
            return self._reply(200, found[0]) if found else self._reply(404, {"error": "no such product"})
        if parts == ["login"] and self.command == "POST":
            try:
                user = json.loads(body or b"{}").get("user", "")
            except ValueError:
                return self._reply(400, {"error": "expected JSON"})
            token = f"tok-{user}-{random.randrange(10**6)}"
            return self._reply(200, {"token": token}, {"X-Session": token})
        if parts == ["cart"] and self.command == "POST":
            if not self.headers.get("Authorization", "").startswith("Bearer tok-"):
                return self._reply(401, {"error": "login first"})
            return self._reply(201, {"cart_id": random.randrange(10**6)})
        if parts and parts[0] == "echo":
            return self._reply(200, {"method": self.command, "path": url.path})
        return self._reply(404, {"error": f"no route for {self.command} {url.path}"})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class _DemoServer(ThreadingHTTPServer):
    daemon_threads = True
    state: DemoState


class DemoAPI:
    """Serves the demo shop on 127.0.0.1 in a background thread: `with DemoAPI() as api: api.url`."""

    def __init__(self, port: int = 0, record: bool = False, delay_ms: tuple[float, float] = (1.0, 6.0)):
        self._server = _DemoServer(("127.0.0.1", port), _Handler)
        self._server.state = DemoState(record=record, delay_ms=delay_ms)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[Recorded]:
        with self._server.state.lock:
            return list(self._server.state.requests)

    def __enter__(self) -> DemoAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def main(argv: list[str] | None = None) -> None:
    """`python -m orchestrator.demo_api --port 8080`: serve the demo shop until SIGTERM or Ctrl-C (the
    compose stack runs it so; a container's first process must stop on SIGTERM itself)."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(prog="python -m orchestrator.demo_api", description="Serve the demo shop API.")
    parser.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default 8080; 0: any free one)")
    args = parser.parse_args(argv)

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    with DemoAPI(port=args.port) as api:
        print(f"demo API on {api.url}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("demo API stopped", flush=True)


if __name__ == "__main__":
    main()
