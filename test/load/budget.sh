#!/usr/bin/env bash
# Runs pushbench's budget scenarios against a freshly built pushd (spawned by
# pushbench itself, demo mode) and prints the median of each figure over
# RUNS runs. Needs go and jq. Usage:
#
#   test/load/budget.sh [RUNS]        (default 3; JSON reports go to $OUT)
#   CONNS=1000 ONLY='^(broadcast|user)' test/load/budget.sh 1
#
# CONNS (default 10000) sets the connections of every scenario but idle19k;
# ONLY (a bash regular expression) selects scenarios by name.
#
# Budgets (2-core machine, tool and server sharing it):
#   idle memory ≤ 8 KB per HTTP/1.1 SSE connection, flat from 1 000 to 19 000;
#   server CPU ≤ 10 µs per broadcast delivery, ≤ 60 µs per personal send;
#   zero lost / duplicated / misrouted; QoS sends ≥ 5 000/s with zero loss.
set -euo pipefail
RUNS=${1:-3}
CONNS=${CONNS:-10000}
ONLY=${ONLY:-}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$(mktemp -d /tmp/pushbench-budget-XXXXXX)}
BIN=$OUT/bin
mkdir -p "$BIN"
(cd "$ROOT" && go build -o "$BIN/pushd" ./cmd/pushd && go build -o "$BIN/pushbench" ./cmd/pushbench)
echo "binaries and reports in $OUT"

# name|pushbench arguments
SCENARIOS=(
  "idle19k|-conns 19000 -mode none -rss-steps 1000,5000,10000 -settle 5s"
  "broadcast-5|-conns $CONNS -users $((CONNS/10)) -tenants 10 -mode broadcast -messages 100 -rate 5 -settle 5s"
  "broadcast-30|-conns $CONNS -users $((CONNS/10)) -tenants 10 -mode broadcast -messages 300 -rate 30 -settle 5s"
  "user|-conns $CONNS -users $CONNS -tenants 10 -mode user -messages 30000 -publishers 8 -settle 1s"
  "tenant|-conns $CONNS -users $((CONNS/10)) -tenants 100 -mode tenant -messages 2000 -rate 200 -settle 1s"
  "qos|-conns $CONNS -users $CONNS -tenants 10 -mode user -qos -messages 50000 -publishers 8 -settle 1s"
  "qosack|-conns $CONNS -users $CONNS -tenants 10 -mode user -qos -ack -messages 50000 -publishers 8 -settle 1s"
)

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "-"; else print a[int((NR+1)/2)]}'; }

selected=()
for sc in "${SCENARIOS[@]}"; do
  if [[ ${sc%%|*} =~ $ONLY ]]; then selected+=("$sc"); fi
done

for sc in "${selected[@]}"; do
  name=${sc%%|*}
  args=${sc#*|}
  for i in $(seq 1 "$RUNS"); do
    echo "== $name run $i: pushbench -spawn \$BIN/pushd $args"
    # shellcheck disable=SC2086
    "$BIN/pushbench" -spawn "$BIN/pushd" $args -json "$OUT/$name-$i.json" >"$OUT/$name-$i.txt" 2>"$OUT/$name-$i.log" || true
    tail -n 3 "$OUT/$name-$i.txt"
  done
done

echo
echo "medians over $RUNS runs"
for sc in "${selected[@]}"; do
  name=${sc%%|*}
  files=("$OUT/$name"-*.json)
  [ -e "${files[0]}" ] || continue
  m() { jq -r "$1" "${files[@]}" | median; }
  printf '%-13s conn/s %s  idle B/conn %s' "$name" "$(m '.connect.rate_per_sec|floor')" "$(m '.memory.bytes_per_conn|floor')"
  if [ "$name" = idle19k ]; then
    for n in 0 1 2 3; do
      printf '  step%d %s B/conn (marginal %s)' "$n" "$(m ".memory.steps[$n].bytes_per_conn // 0|floor")" "$(m ".memory.steps[$n].marginal_bytes_per_conn // 0|floor")"
    done
  else
    printf '  sends/s %s  deliv/s %s  cpu/deliv %sµs  cpu/send %sµs  lat p50 %sµs p99 %sµs max %sµs  lost %s dup %s misrouted %s' \
      "$(m '.phases[0].sends_per_sec|floor')" "$(m '.phases[0].deliveries_per_sec|floor')" \
      "$(m '.phases[0].server_cpu_per_delivery_us*100|floor/100')" "$(m '.phases[0].server_cpu_per_send_us*100|floor/100')" \
      "$(m '.phases[0].latency.p50_us|floor')" "$(m '.phases[0].latency.p99_us|floor')" "$(m '.phases[0].latency.max_us|floor')" \
      "$(jq -s 'map(.phases[0].lost)|add' "${files[@]}")" "$(jq -s 'map(.phases[0].duplicated)|add' "${files[@]}")" \
      "$(jq -s 'map(.phases[0].misrouted)|add' "${files[@]}")"
  fi
  echo
done
