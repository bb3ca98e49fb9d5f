"""One-shot schema migration: creates the database the web app uses, then exits 0."""
import os
import sqlite3

data = os.environ.get("WHARF_VOLUME_DATA", "/data")
os.makedirs(data, exist_ok=True)
db = sqlite3.connect(os.path.join(data, "app.db"))
db.execute("CREATE TABLE IF NOT EXISTS visits (id INTEGER PRIMARY KEY, at TEXT DEFAULT CURRENT_TIMESTAMP)")
db.commit()
print(f"migrated {os.path.join(data, 'app.db')}", flush=True)
