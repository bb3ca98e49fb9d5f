"""Health check: exits 0 when the URL answers 200."""
import sys
import urllib.request

try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except OSError as e:
    print(e)
    sys.exit(1)
