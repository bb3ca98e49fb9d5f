"""A tiny JSON-over-HTTP server and client shared by the example's programs."""
import http.server
import json
import os
import urllib.request

INSTANCE = os.environ.get("HOSTNAME", "?")


def get(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def post(url, timeout=2):
    req = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.load(r)


def serve(port, routes):
    """routes: {(method, path): function() -> dict}; /health answers by itself."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self, method):
            if self.path == "/health":
                body, code = {"ok": True}, 200
            elif (method, self.path) in routes:
                try:
                    body, code = routes[(method, self.path)](), 200
                except Exception as e:  # a backend that is down or unreachable
                    body, code = {"error": str(e)}, 502
            else:
                body, code = {"error": "not found"}, 404
            data = json.dumps(body, indent=2).encode() + b"\n"
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self.answer("GET")

        def do_POST(self):
            self.answer("POST")

        def log_message(self, *args):
            pass

    print(f"{INSTANCE} listening on {port}")
    http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
