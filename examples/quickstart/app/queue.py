"""A tiny in-memory job queue over HTTP (the stack's message queue): POST /jobs, GET /jobs/next."""
import collections
import http.server
import os
import threading

jobs = collections.deque()
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    def reply(self, code, body=b""):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health":
            return self.reply(200, b"ok\n")
        if self.path == "/jobs/next":
            with lock:
                job = jobs.popleft() if jobs else None
            return self.reply(200, job) if job is not None else self.reply(204)
        self.reply(404)

    def do_POST(self):
        if self.path != "/jobs":
            return self.reply(404)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with lock:
            jobs.append(body)
            depth = len(jobs)
        print(f"queued job {body.decode(errors='replace')!r} (depth {depth})", flush=True)
        self.reply(202)

    def log_message(self, *args):
        pass


port = int(os.environ["QUEUE_PORT"])
print(f"queue listening on port {port}", flush=True)
http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
