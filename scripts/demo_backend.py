#!/usr/bin/env python3
"""A tiny demo backend for `make run`: answers every request with JSON naming itself,
the path it saw and the forwarding headers the gateway added. Standard library only."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    name = "backend"

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path == "/healthz":
            body = b"ok\n"
            ctype = "text/plain"
        else:
            body = json.dumps({
                "backend": self.name,
                "method": self.command,
                "path": self.path,
                "x-forwarded-for": self.headers.get("X-Forwarded-For"),
                "x-request-id": self.headers.get("X-Request-Id"),
            }).encode() + b"\n"
            ctype = "application/json"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _answer

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1])
    Handler.name = sys.argv[2] if len(sys.argv) > 2 else f"backend-{port}"
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
