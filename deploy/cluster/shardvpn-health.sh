#!/bin/bash
# Health check of one shardvpn server for keepalived (vrrp_script, or MISC_CHECK with IPVS):
# succeeds when the server's metrics-listen endpoint at ADDR:PORT answers GET /metrics with
# 200 and shardvpn's client gauge. The endpoint is served by the server's main thread, the
# one that also admits clients, so a stopped, hung or crashed server fails it.
# Usage: shardvpn-health.sh ADDR PORT   (bash only: no curl needed)
set -u
addr=${1:?usage: shardvpn-health.sh ADDR PORT}
port=${2:?usage: shardvpn-health.sh ADDR PORT}
exec 3<>"/dev/tcp/${addr}/${port}" || exit 1
printf 'GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n' "$addr" >&3
reply=$(timeout 2 cat <&3) || exit 1
exec 3<&-
case "$reply" in
  "HTTP/1."[01]" 200"*) ;;
  *) exit 1 ;;
esac
grep -q '^shardvpn_connected_clients ' <<<"$reply"
