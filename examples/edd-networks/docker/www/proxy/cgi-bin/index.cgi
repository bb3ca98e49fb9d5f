#!/bin/sh
# The proxy (nginx in EDD), on the proxy network only: forwards to edd, and shows that the
# backend network is out of its reach.
if why=$(nc -w 1 db 5432 </dev/null 2>&1); then
  db="yes"
else
  case "$why" in
    *"bad address"*) db="no (the name does not resolve)" ;;
    *) db="no (${why#nc: })" ;;
  esac
fi
if upstream=$(timeout 3 wget -q -O - http://edd:8000/ 2>&1); then
  printf 'Content-Type: application/json\r\n\r\n'
else
  printf 'Status: 502 Bad Gateway\r\nContent-Type: application/json\r\n\r\n'
  upstream="\"edd: $(echo $upstream)\""
fi
printf '{"proxy": "%s", "upstream": %s, "can_reach_db": "%s"}\n' "$HOSTNAME" "$upstream" "$db"
