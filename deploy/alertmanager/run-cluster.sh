#!/bin/sh
# Two clustered Alertmanagers on this machine, on the same rendered configuration, for a
# try-out (deploy/alertmanager/cluster.md): node A on 127.0.0.1:9093 (gossip 9094), node B on
# 127.0.0.1:9193 (gossip 9194). Usage: run-cluster.sh RENDERED_ALERTMANAGER_YML [STORAGE_DIR]
# Stops both on Ctrl-C.
set -eu
config=${1:?usage: run-cluster.sh RENDERED_ALERTMANAGER_YML [STORAGE_DIR]}
storage=${2:-./var/alertmanager-cluster}
binary=$(command -v prometheus-alertmanager || command -v alertmanager)
mkdir -p "$storage/a" "$storage/b"
"$binary" --config.file="$config" --storage.path="$storage/a" \
  --web.listen-address=127.0.0.1:9093 --cluster.listen-address=127.0.0.1:9094 \
  --cluster.peer=127.0.0.1:9194 &
a=$!
"$binary" --config.file="$config" --storage.path="$storage/b" \
  --web.listen-address=127.0.0.1:9193 --cluster.listen-address=127.0.0.1:9194 \
  --cluster.peer=127.0.0.1:9094 &
b=$!
trap 'kill $a $b 2>/dev/null' INT TERM EXIT
wait
