"""Health check: exits 0 when the URL answers 200."""
import sys
import urllib.request

try:
    sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)
except Exception as e:  # any failure to connect is "not healthy yet"
    print(e)
    sys.exit(1)
