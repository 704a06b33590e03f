#!/usr/bin/env bash
# Runs pushbench's budget scenarios against a freshly built pushd (spawned by
# pushbench itself, demo mode) and prints the median of each figure over
# RUNS runs. Needs go and jq. Usage:
#
#   test/load/budget.sh [RUNS]        (default 3; JSON reports go to $OUT)
#   CONNS=1000 ONLY='^(broadcast|user)' test/load/budget.sh 1
#
# CONNS (default 10000) sets the connections of every scenario but idle19k;
# ONLY (a bash regular expression) selects scenarios by name. Every run goes
# through all selected scenarios before the next starts, so the figures of
# one run were taken close together.
#
# The ref-* scenarios run the same broadcast against test/load/refserver's
# two reference designs (a goroutine per connection on plain net/http; hijacked
# connections and a writer pool), the yardsticks the budgets were set
# against: machines here drift by tens of percent between days, so compare
# pushd with them in the same run.
#
# Budgets (2-core machine, tool and server sharing it):
#   idle memory ≤ 8 KB per HTTP/1.1 SSE connection, flat from 1 000 to 19 000;
#   server CPU ≤ 10 µs per broadcast delivery, ≤ 60 µs per personal send;
#   zero lost / duplicated / misrouted; QoS sends ≥ 5 000/s with zero loss;
#   3 nodes on the Redis transport: user sends at 1 000/s, p99 ≤ 5 ms;
#   a cross-node user send (CPU of both nodes and Redis, cross-user) ≤ 1.6 × a
#   single-node one (user-5k) — see docs/performance.md.
set -euo pipefail
RUNS=${1:-3}
CONNS=${CONNS:-10000}
ONLY=${ONLY:-}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0} # the cluster scenario's transport
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$(mktemp -d /tmp/pushbench-budget-XXXXXX)}
BIN=$OUT/bin
mkdir -p "$BIN"
(cd "$ROOT" && go build -o "$BIN/pushd" ./cmd/pushd && go build -o "$BIN/pushbench" ./cmd/pushbench &&
  go build -o "$BIN/refserver" ./test/load/refserver)
echo "binaries and reports in $OUT"

# name|server binary|pushbench arguments
REDIS_SERVER=${REDIS_SERVER:-$(command -v redis-server)} # the cross-node scenario's private Redis
CROSS="-conns 5000 -users 5000 -tenants 10 -mode user -messages 10000 -publishers 16 -settle 1s"
BROADCAST5="-conns $CONNS -users $((CONNS/10)) -tenants 10 -mode broadcast -messages 100 -rate 5 -settle 5s"
SCENARIOS=(
  "idle19k|pushd|-conns 19000 -mode none -rss-steps 1000,5000,10000 -settle 5s"
  "broadcast-5|pushd|$BROADCAST5"
  "ref-goroutine-b5|refserver|-spawn-args=-design=goroutine $BROADCAST5"
  "ref-pool-b5|refserver|-spawn-args=-design=pool $BROADCAST5"
  "ref-floor-b5|refserver|-spawn-args=-design=epoll $BROADCAST5"
  "broadcast-30|pushd|-conns $CONNS -users $((CONNS/10)) -tenants 10 -mode broadcast -messages 300 -rate 30 -settle 5s"
  "user|pushd|-conns $CONNS -users $CONNS -tenants 10 -mode user -messages 30000 -publishers 8 -settle 1s"
  "tenant|pushd|-conns $CONNS -users $((CONNS/10)) -tenants 100 -mode tenant -messages 2000 -rate 200 -settle 1s"
  "qos|pushd|-conns $CONNS -users $CONNS -tenants 10 -mode user -qos -messages 50000 -publishers 8 -settle 1s"
  "qosack|pushd|-conns $CONNS -users $CONNS -tenants 10 -mode user -qos -ack -messages 50000 -publishers 8 -settle 1s"
  "user-5k|pushd|$CROSS"
  "cross-user|pushd|-spawn-nodes 2 -spawn-redis $REDIS_SERVER -conn-nodes 1 -api-nodes 2 -floor $BIN/refserver $CROSS"
  "cluster3-user|pushd|-spawn-nodes 3 -spawn-env PUSHD_CLUSTER_TRANSPORT=redis,PUSHD_REDIS_URL=$REDIS_URL -conns $CONNS -users $CONNS -tenants 10 -mode user -messages 10000 -rate 1000 -publishers 8 -settle 1s"
)

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "-"; else print a[int((NR+1)/2)]}'; }

selected=()
for sc in "${SCENARIOS[@]}"; do
  if [[ ${sc%%|*} =~ $ONLY ]]; then selected+=("$sc"); fi
done

for i in $(seq 1 "$RUNS"); do
  for sc in "${selected[@]}"; do
    IFS='|' read -r name server args <<<"$sc"
    echo "== $name run $i: pushbench -spawn \$BIN/$server $args"
    # shellcheck disable=SC2086
    "$BIN/pushbench" -spawn "$BIN/$server" $args -json "$OUT/$name-$i.json" >"$OUT/$name-$i.txt" 2>"$OUT/$name-$i.log" || true
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
  printf '%-17s conn/s %s  idle B/conn %s' "$name" "$(m '.connect.rate_per_sec|floor')" "$(m '.memory.bytes_per_conn|floor')"
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
