#!/usr/bin/env bash
# Damages a real raftd's data directory in each way storage must refuse, and
# restarts it: 200 acknowledged writes of 400 kB (two log segments, a
# snapshot), then one kind of damage, then a restart that must refuse with
# one line naming the file (or, undamaged, serve all 200 keys).
#
#   bash scripts/corrupt-raftd.sh [deno|bun]
set -u
cd "$(dirname "$0")/.."
RT=${1:-deno}
case "$RT" in
  deno) CMD=(./node_modules/.bin/deno run -A examples/raftd/main.ts) ;;
  bun) CMD=(./node_modules/.bin/bun examples/raftd/main.ts) ;;
  *) echo "usage: $0 [deno|bun]" >&2; exit 2 ;;
esac
P=${PORT:-4397}
D=$(mktemp -d "${TMPDIR:-/tmp}/corrupt-raftd-XXXXXX")
LOG=$D.log
VALUE=$D.value
trap 'rm -rf "$D" "$LOG" "$VALUE"' EXIT
head -c 400000 /dev/zero | tr '\0' v >"$VALUE"

fresh() {
  rm -rf "$D"
  "${CMD[@]}" -h 127.0.0.1 -p "$P" -election-timeout 300ms -snapshot-entries 150 "$D" >"$LOG" 2>&1 &
  local pid=$! n=0
  for _ in $(seq 1 50); do curl -sf "localhost:$P/status" >/dev/null && break; sleep 0.2; done
  for i in $(seq 1 200); do
    [ "$(curl -s -o /dev/null -w "%{http_code}" -XPUT "localhost:$P/db/k$i" --data-binary @"$VALUE")" = 200 ] && n=$((n + 1))
  done
  kill -TERM $pid; wait $pid
  echo "  $n writes acknowledged; wal: $(ls "$D/wal" | tr '\n' ' ')snapshots: $(ls "$D/snapshots" | tr '\n' ' ')"
}

restart() {
  "${CMD[@]}" -h 127.0.0.1 -p "$P" -election-timeout 300ms "$D" >"$LOG" 2>&1 &
  local pid=$! ok=0
  for _ in $(seq 1 100); do curl -sf "localhost:$P/status" >/dev/null && break; kill -0 $pid 2>/dev/null || break; sleep 0.2; done
  if kill -0 $pid 2>/dev/null; then
    for i in $(seq 1 200); do [ "$(curl -s -o /dev/null -w "%{http_code}" "localhost:$P/db/k$i")" = 200 ] && ok=$((ok + 1)); done
    echo "  started: $ok of 200 keys readable"
    kill -TERM $pid; wait $pid
  else
    wait $pid
    echo "  refused, exit code $?: $(grep '^raftd:' "$LOG" | head -1)"
  fi
}

last_segment() { ls "$D"/wal/*.seg | tail -1; }
flip() { printf '\x55' | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null; }

echo "flip a byte in the final log record"; fresh; f=$(last_segment); flip "$f" $(($(stat -c %s "$f") - 100)); restart
echo "zero the final 3000 bytes of the log"; fresh; f=$(last_segment)
dd if=/dev/zero of="$f" bs=1 seek=$(($(stat -c %s "$f") - 3000)) count=3000 conv=notrunc 2>/dev/null; restart
echo "delete the last segment"; fresh; rm "$(last_segment)"; restart
echo "cut 1 MB off the last segment"; fresh; truncate -s -1000000 "$(last_segment)"; restart
echo "flip a byte in the snapshot's data"; fresh; flip "$(ls "$D"/snapshots/*.snap | tail -1)" 5000; restart
echo "change the cluster id in raftd.json"; fresh; sed -i 's/"cluster": "./"cluster": "Z/' "$D/raftd.json"; restart
echo "delete raftd.json"; fresh; rm "$D/raftd.json"; restart
echo "no damage"; fresh; restart
