"""The core app, on both networks: answers the proxy with what it reads from db."""
from serve import INSTANCE, get, serve


def index():
    return {"edd": INSTANCE, "from_db": get("http://db:5432/")}


serve(8000, {("GET", "/"): index})
