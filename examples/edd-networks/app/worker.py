"""A background worker on the backend network: reports a job to db every half second."""
import time

from serve import INSTANCE, post

while True:
    try:
        post("http://db:5432/jobs")
    except OSError as e:
        print(f"{INSTANCE}: db unreachable: {e}")
    time.sleep(0.5)
