"""A background worker: takes jobs from the queue and processes them."""
import os
import time
import urllib.request

queue = os.environ["QUEUE_URL"]
name = os.environ.get("HOSTNAME", "worker")
print(f"{name} polling {queue}", flush=True)
while True:
    with urllib.request.urlopen(f"{queue}/jobs/next") as response:
        if response.status == 200:
            print(f"processed {response.read().decode()!r}", flush=True)
            continue
    time.sleep(0.5)
