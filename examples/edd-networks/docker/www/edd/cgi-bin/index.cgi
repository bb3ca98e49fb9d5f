#!/bin/sh
# The core app, on both networks: answers the proxy with what it reads from db.
if db=$(timeout 3 wget -q -O - http://db:5432/ 2>&1); then
  printf 'Content-Type: application/json\r\n\r\n'
  printf '{"edd": "%s", "from_db": %s}\n' "$HOSTNAME" "$db"
else
  printf 'Status: 502 Bad Gateway\r\nContent-Type: application/json\r\n\r\n'
  printf '{"edd": "%s", "error": "db: %s"}\n' "$HOSTNAME" "$(echo $db)"
fi
