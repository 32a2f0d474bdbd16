#!/bin/sh
# Starts one Redis node for splitbrain (see redis.toml): the first member of the peer
# list (n1) is the primary, every other node a replica of it.
#
# Usage: start.sh NAME ADDR PORT DATA_DIR PEERS
#   PEERS is "n1=10.0.0.1,n2=10.0.0.2,..." (the description's {peers}); every node
#   listens on the same PORT at its own address.
#
# It ends in `exec redis-server`, so the pid the harness recorded is Redis's own and its
# signals (SIGSTOP, SIGKILL) reach Redis. Redis logs to stdout, which the harness keeps.
set -eu

if [ "$#" -ne 5 ]; then
    echo "usage: start.sh NAME ADDR PORT DATA_DIR PEERS (got $# arguments)" >&2
    exit 2
fi
name=$1 addr=$2 port=$3 data_dir=$4 peers=$5

# The primary is the first entry of the peer list.
first=${peers%%,*}
primary_name=${first%%=*}
primary_addr=${first#*=}
if [ -z "$primary_name" ] || [ "$primary_name" = "$first" ] || [ -z "$primary_addr" ]; then
    echo "start.sh: cannot find the primary in the peer list \"$peers\" (expected NAME=ADDR,...)" >&2
    exit 2
fi

mkdir -p "$data_dir"

# Nothing is persisted: a node killed and restarted comes back empty (a replica then
# resyncs from the primary; a restarted primary empties its replicas). A full resync
# starts at once instead of after the default 5 s wait for more replicas.
set -- --bind "$addr" --port "$port" --dir "$data_dir" \
    --save "" --appendonly no --protected-mode no --daemonize no --logfile "" \
    --repl-diskless-sync-delay 0
if [ "$name" != "$primary_name" ]; then
    set -- "$@" --replicaof "$primary_addr" "$port"
fi
echo "start.sh: $name at $addr:$port, primary $primary_name at $primary_addr:$port" >&2
exec redis-server "$@"
