"""The web app: counts visits in the database and queues a job per visit for the workers."""
import http.server
import os
import sqlite3
import urllib.request

data = os.environ.get("WHARF_VOLUME_DATA", "/data")
queue = os.environ["QUEUE_URL"]


class Handler(http.server.BaseHTTPRequestHandler):
    def reply(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health":
            return self.reply(200, b"ok\n")
        db = sqlite3.connect(os.path.join(data, "app.db"))
        db.execute("INSERT INTO visits DEFAULT VALUES")
        db.commit()
        (count,) = db.execute("SELECT COUNT(*) FROM visits").fetchone()
        urllib.request.urlopen(urllib.request.Request(f"{queue}/jobs", data=f"visit {count}".encode()))
        self.reply(200, f"hello from {os.environ.get('HOSTNAME', 'web')}: visit {count}\n".encode())

    def log_message(self, fmt, *args):
        print(fmt % args, flush=True)


port = int(os.environ["WEB_PORT"])
print(f"web listening on port {port}", flush=True)
http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
