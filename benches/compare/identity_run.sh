#!/usr/bin/env bash
# OneID benchmark: userops vs igraph vs networkx on the same generated rows.
#   benches/compare/identity_run.sh ROWS [networkx|no-networkx]
# Needs .venv with pandas, numpy, networkx, igraph (pip install networkx igraph pandas).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=$1
NX=${2:-networkx}
PY=.venv/bin/python
DATA=${USEROPS_BENCHDATA:-/work/benchdata/identity}
mkdir -p "$DATA"
CSV=$DATA/userops_identity_${ROWS}.csv
[ -f "$CSV" ] || $PY benches/compare/identity_data.py "$ROWS" "$CSV"
cargo build -q --release -p userops-benches --example identity_scale --example identity_floor
T="/usr/bin/time -f user=%U,sys=%S,wall=%e,maxrss_kb=%M"
echo "== userops, default rules"
$T target/release/examples/identity_scale "$CSV" default 100000
echo "== userops, no rules (plain components)"
$T target/release/examples/identity_scale "$CSV" none 100000 "$CSV.oneids"
echo "== baseline: read, split, two hash maps, plain union-find (no rules, no per-row answer)"
$T target/release/examples/identity_floor "$CSV"
echo "== igraph"
$T $PY benches/compare/identity_compare.py igraph "$CSV" "$CSV.oneids"
if [ "$NX" = networkx ]; then
  echo "== networkx"
  $T $PY benches/compare/identity_compare.py networkx "$CSV" "$CSV.oneids"
fi
