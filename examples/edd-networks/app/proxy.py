"""The proxy (nginx in EDD), on the proxy network only: forwards to edd, and shows that the
backend network is out of its reach."""
import socket

from serve import INSTANCE, get, serve


def reachable(host, port):
    try:
        socket.create_connection((host, port), timeout=1).close()
        return "yes"
    except socket.gaierror:
        return "no (the name does not resolve)"
    except OSError as e:
        return f"no ({e.strerror or e})"


def index():
    return {
        "proxy": INSTANCE,
        "upstream": get("http://edd:8000/"),
        "can_reach_db": reachable("db", 5432),
    }


serve(8080, {("GET", "/"): index})
