"""The backend's data service (postgres in EDD): a counter the workers increment."""
import threading

from serve import INSTANCE, serve

count = 0
lock = threading.Lock()


def read():
    return {"db": INSTANCE, "jobs_done": count}


def increment():
    global count
    with lock:
        count += 1
    return read()


serve(5432, {("GET", "/"): read, ("POST", "/jobs"): increment})
