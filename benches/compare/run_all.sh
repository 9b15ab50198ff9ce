#!/usr/bin/env bash
# The peer comparison in one command: one data set from `userops generate`, then userops beside
# networkx and igraph (OneID), pandas / polars / DuckDB (audience, lifecycle, RFM) and lifetimes
# (BG/NBD) on that same data, in one run; the ratios go into the marked section of
# benches/README.md with the machine, the library versions and this command.
#
#   benches/compare/run_all.sh [USERS]        # default 100000
#
# Data goes to $USEROPS_BENCH_DATA (default target/compare-data); it is deleted at the end
# unless KEEP_DATA=1. Peers are installed into .venv from benches/compare/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
USERS=${1:-100000}
BASE=${USEROPS_BENCH_DATA:-$ROOT/target/compare-data}
DATA=$BASE/users-$USERS
OUT=$DATA/results
PY=$ROOT/.venv/bin/python
T="/usr/bin/time -f wall=%e,user=%U,sys=%S,maxrss_kb=%M"

[ -x "$PY" ] || python3 -m venv "$ROOT/.venv"
"$PY" -m pip install -q --disable-pip-version-check -r benches/compare/requirements.txt maturin
echo "== build (release): userops CLI, bench examples, Python wheel"
cargo build -q --release -p userops-cli
cargo build -q --release -p userops-benches --example identity_scale --example lifecycle_rust
rm -rf target/wheels-release
"$ROOT/.venv/bin/maturin" build -q --release -m bindings/python/Cargo.toml -o target/wheels-release 2>&1 | grep -v "^📦\|^🔗\|^🐍\|^📡" || true
"$PY" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps target/wheels-release/userops-*.whl

echo "== generate $USERS users -> $DATA"
rm -rf "$DATA"
mkdir -p "$OUT"
target/release/userops generate --users "$USERS" --out "$DATA" --quiet

echo "== OneID: userops (plain components) vs igraph vs networkx on identities.csv"
$T target/release/examples/identity_scale "$DATA/identities.csv" none 1000 "$DATA/oneids.txt" \
  >"$OUT/identity_userops.json" 2>"$OUT/identity_userops.time"
for tool in igraph networkx; do
  $T "$PY" benches/compare/identity_compare.py "$tool" "$DATA/identities.csv" "$DATA/oneids.txt" \
    >"$OUT/identity_$tool.json" 2>"$OUT/identity_$tool.time"
done
cat "$OUT"/identity_*.json

echo "== lifecycle: userops vs polars vs DuckDB on registrations + activities"
"$PY" benches/compare/lifecycle_gen.py "$DATA/lc" --from-generated "$DATA"
"$PY" benches/compare/lifecycle_compare.py "$DATA/lc" userops,polars,duckdb --json "$OUT/lifecycle.json"

echo "== audience: userops vs pandas vs polars vs DuckDB on per-member order aggregates"
"$PY" benches/compare/audience.py generated "$DATA" --json "$OUT/audience.json"

echo "== RFM (userops vs pandas vs polars) and BG/NBD (userops vs lifetimes) on orders.csv"
"$PY" benches/compare/models_bench.py generated "$DATA" --json "$OUT/models.json"

"$PY" benches/compare/write_table.py "$OUT" "$USERS" "benches/compare/run_all.sh $USERS" benches/README.md
if [ "${KEEP_DATA:-0}" != 1 ]; then
  rm -rf "$DATA"
fi
