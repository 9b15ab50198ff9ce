#!/usr/bin/env bash
# Where the OneID batch spends its wall time, phase by phase, on the benchmark CSV:
#   benches/compare/identity_phases.sh ROWS.csv [RUNS] [default|none]
# The library has no timers (a library does not print), so this builds a throw-away copy of
# HEAD in a git worktree with stderr timers put around the phases of `resolve_batch`, runs the
# harness RUNS times (default 3), and removes the copy. The patch asserts every anchor it
# needs, so it fails loudly instead of timing the wrong thing when batch.rs changes.
set -euo pipefail
cd "$(dirname "$0")/../.."
CSV=$1
RUNS=${2:-3}
RULES=${3:-default}
WT=$(mktemp -d /tmp/userops-phases.XXXXXX)
trap 'git worktree remove --force "$WT" >/dev/null 2>&1 || rm -rf "$WT"' EXIT
git worktree add -q --detach "$WT" HEAD
python3 - "$WT/crates/userops/src/identity/batch.rs" <<'EOF'
import sys
path = sys.argv[1]
s = open(path).read()
def put(anchor, before="", after=""):
    global s
    assert s.count(anchor) == 1, f"anchor not found once: {anchor!r}"
    s = s.replace(anchor, before + anchor + after)
T = "let t0 = std::time::Instant::now();"
def say(name):
    return f'eprintln!("phase {name} {{:.3}}", t0.elapsed().as_secs_f64());'
put("        // Normalizing costs about three times parsing the kinds", before=f"        {T}\n")
put("        let values = Values::new(cols, norm);", before=f"        {say('parse_normalize')}\n        {T}\n")
put("        self.link_groups(\n            &values,", before=f"        {say('numbering')}\n")
put("        drop(rec_hash);", after=f"\n        {T}")
put("        // Stopped or not, the graph is left whole", before=f"        {say('linking')}\n        {T}\n")
put("        self.scratch = scratch;\n        stopped?;", before=f"        {say('index_answer')}\n")
open(path, "w").write(s)
EOF
# A target directory of its own under target/, kept between runs so dependencies build once.
export CARGO_TARGET_DIR=$PWD/target/phases
(cd "$WT" && cargo build -q --release -p userops-benches --example identity_scale)
for i in $(seq "$RUNS"); do
  out=$(/usr/bin/time -f "process user=%U sys=%S wall=%e maxrss_kb=%M" \
    "$CARGO_TARGET_DIR/release/examples/identity_scale" "$CSV" "$RULES" 0 2>&1)
  read_split=$(grep -o '"read_split_s": [0-9.]*' <<<"$out" | grep -o '[0-9.]*$')
  echo "run $i: phase read_split $read_split $(grep -E '^(phase|process)' <<<"$out" | tr '\n' ' ')"
done
