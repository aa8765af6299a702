#!/bin/sh
# keepalived notify script for a shardvpn cluster balanced by nftables (for kernels without
# IPVS). keepalived runs one vrrp_instance per real server whose track_script is that server's
# health check; this script hears each instance's state and rewrites the DNAT rules so that new
# flows to the virtual address are spread, by a hash of the client's address (and port), over the
# real servers whose instance is MASTER. Flows already running stay where they are: NAT is
# decided on a flow's first packet and kept in conntrack, so rewriting the rules never moves
# them. The flows of a server that went down are removed from conntrack, so their next packet
# is balanced again.
#
# Usage: nft-balancer.sh CONF STATE_DIR [INSTANCE NAME STATE PRIORITY]
#   keepalived.conf: notify "/path/nft-balancer.sh /etc/shardvpn-lb/balancer.conf /run/shardvpn-lb"
#   keepalived appends: INSTANCE NAME MASTER|BACKUP|FAULT|STOP PRIORITY. Without them the rules are
#   written from the state as it stands (at boot: no server is up yet, nothing is balanced).
# CONF lines:
#   vip ADDRESS                         the virtual IPv4 address clients dial
#   hash addr|addr-port                 what the hash covers (addr-port when many clients share an address)
#   real INSTANCE udp|tcp PORT ADDRESS  a real server, healthy while keepalived's INSTANCE is MASTER
set -eu
conf=${1:?usage: nft-balancer.sh CONF STATE_DIR [INSTANCE NAME STATE PRIORITY]}
state=${2:?usage: nft-balancer.sh CONF STATE_DIR [INSTANCE NAME STATE PRIORITY]}
table=shardvpn_lb
mkdir -p "$state/up"

# One writer at a time: keepalived runs the notify scripts of several instances at once.
exec 9>"$state/lock"
flock 9

vip=$(awk '$1 == "vip" { print $2 }' "$conf")
hash=$(awk '$1 == "hash" { print $2 }' "$conf")
[ -n "$vip" ] || { echo "nft-balancer: no 'vip' line in $conf" >&2; exit 1; }

down=""
if [ "$#" -ge 5 ] && [ "$3" = INSTANCE ]; then
  name=$4
  case "$name" in */* | .*) echo "nft-balancer: bad instance name '$name'" >&2; exit 1 ;; esac
  if [ "$5" = MASTER ]; then
    : >"$state/up/$name"
  else
    [ -e "$state/up/$name" ] && down=$name
    rm -f "$state/up/$name"
  fi
fi

# The rules, from CONF and the up/ markers, in one nft transaction: the chain stays registered
# (flush, not delete), so no flow loses its NAT binding while the rules change.
rules=$(awk -v vip="$vip" -v hash="$hash" -v up="$state/up" -v table="$table" '
  $1 == "real" {
    key = $3 " " $4
    if (!(key in seen)) { seen[key] = 1; order[++n] = key }
    if (system("test -e \"" up "/" $2 "\"") == 0) { addrs[key] = addrs[key] " " $5 }
  }
  END {
    printf "add table ip %s\n", table
    printf "add chain ip %s prerouting { type nat hook prerouting priority dstnat; policy accept; }\n", table
    printf "flush chain ip %s prerouting\n", table
    for (i = 1; i <= n; i++) {
      split(order[i], sp, " "); proto = sp[1]; port = sp[2]
      m = split(addrs[order[i]], a, " ")
      if (m == 0) continue
      map = ""
      for (j = 1; j <= m; j++) map = map (j > 1 ? ", " : "") (j - 1) " : " a[j]
      key = (hash == "addr") ? "ip saddr" : "ip saddr . " proto " sport"
      printf "add rule ip %s prerouting ip daddr %s %s dport %s dnat to jhash %s mod %d map { %s }\n", table, vip, proto, port, key, m, map
    }
  }' "$conf")
printf '%s\n' "$rules" | nft -f -

# Flows that were on the server that went down: forget them, so their next packet is balanced
# over the servers still up instead of following a stale binding.
if [ -n "$down" ] && command -v conntrack >/dev/null 2>&1; then
  awk -v name="$down" '$1 == "real" && $2 == name { print $3, $4, $5 }' "$conf" | while read -r proto port addr; do
    conntrack -D -p "$proto" --orig-dst "$vip" --orig-port-dst "$port" --reply-src "$addr" >/dev/null 2>&1 || true
  done
fi
