"""Turn the results of `run_all.sh` into a table of ratios (peer time / userops time) and write it
into benches/README.md between the COMPARE markers, with the machine, library versions and the
command.

    python benches/compare/write_table.py RESULTS_DIR USERS COMMAND README
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys

BEGIN = "<!-- COMPARE:BEGIN (written by benches/compare/run_all.sh; do not edit by hand) -->"
END = "<!-- COMPARE:END -->"


def time_file(path: str) -> dict:
    """`/usr/bin/time -f wall=..,user=..,sys=..,maxrss_kb=..` output: the last such line."""
    with open(path) as f:
        line = [l for l in f.read().splitlines() if l.startswith("wall=")][-1]
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split(","))}


def load(path: str):
    with open(path) as f:
        return json.loads(f.read().strip().splitlines()[-1])


def machine() -> str:
    cpu = "?"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        m = re.search(r"Model name:\s*(.+)", lscpu)
        cpu = m.group(1).strip() if m else cpu
    except OSError:
        pass
    mem = "?"
    with open("/proc/meminfo") as f:
        m = re.search(r"MemTotal:\s*(\d+) kB", f.read())
        if m:
            mem = f"{int(m.group(1)) / 2**20:.0f} GiB"
    load = os.getloadavg()
    return (f"{cpu}, {os.cpu_count()} CPUs (nproc), {mem} RAM, {platform.system()} {platform.release()}; "
            f"shared with other engineers' builds (load average {load[0]:.1f} when the table was written)")


def versions() -> str:
    out = []
    for mod in ["userops", "pandas", "polars", "duckdb", "pyarrow", "numpy", "networkx", "igraph", "lifetimes", "scipy"]:
        try:
            m = __import__(mod)
            out.append(f"{mod} {getattr(m, '__version__', '?')}")
        except ImportError:
            out.append(f"{mod} (missing)")
    return ", ".join(out) + f", Python {platform.python_version()}"


def ratio(peer: float, ours: float) -> str:
    return f"{peer / ours:.1f}×" if ours > 0 else "–"


def main() -> None:
    res, users, command, readme = sys.argv[1:5]
    rows = []

    ident = load(os.path.join(res, "identity_userops.json"))
    ut = time_file(os.path.join(res, "identity_userops.time"))
    ours = ident["read_split_s"] + ident["resolve_s"]
    for tool in ["igraph", "networkx"]:
        p = load(os.path.join(res, f"identity_{tool}.json"))
        pt = time_file(os.path.join(res, f"identity_{tool}.time"))
        same = p.get("same_partition_as_userops")
        rows.append((f"OneID, {ident['rows']:,} identifier rows → {ident['persons']:,} persons",
                     tool, f"{ours:.2f} s / {ut['maxrss_kb'] / 1024:.0f} MiB",
                     f"{p['total_wall_s']:.2f} s / {pt['maxrss_kb'] / 1024:.0f} MiB",
                     ratio(p["total_wall_s"], ours), f"same partition: {same}"))

    lc = load(os.path.join(res, "lifecycle.json"))
    base = lc[0]
    for o in lc[1:]:
        rows.append((f"lifecycle stages + transitions, {base['events']:,} activity events",
                     o["engine"], f"{base['seconds']:.2f} s / {base['rss_mib']:.0f} MiB",
                     f"{o['seconds']:.2f} s / {o['rss_mib']:.0f} MiB", ratio(o["seconds"], base["seconds"]),
                     "transition counts equal"))

    au = load(os.path.join(res, "audience.json"))
    u = au["userops"]["wall_ms"]
    for tool in ["pandas", "polars", "duckdb"]:
        rows.append((f"audience `n_orders >= 3 AND gmv >= 3000` over {au['tagged_users']:,} buyers",
                     tool, f"{u:.2f} ms", f"{au[tool]['wall_ms']:.2f} ms", ratio(au[tool]["wall_ms"], u),
                     f"{au['members']:,} members in all four"))

    mo = load(os.path.join(res, "models.json"))
    r = mo["rfm"]
    for tool in ["pandas", "polars"]:
        rows.append((f"RFM, {mo['orders']:,} orders of {mo['customers']:,} buyers", tool,
                     f"{r['userops'][0]:.2f} s", f"{r[tool][0]:.2f} s", ratio(r[tool][0], r["userops"][0]),
                     f"recency identical: {r['recency_identical']}"))
    b = mo["bgnbd"]
    task = f"BG/NBD fit, {mo['customers']:,} buyers (daily)"
    if b.get("converged", True) and b.get("lifetimes") is not None:
        rows.append((task, "lifetimes", f"{b['userops'][0]:.2f} s", f"{b['lifetimes'][0]:.2f} s",
                     ratio(b["lifetimes"][0], b["userops"][0]),
                     f"max relative parameter difference {b['max_rel_param_diff']:.1e}"))
    else:
        # Generated purchase histories need not have an interior maximum of the BG/NBD
        # likelihood; then a fitter must say so rather than return where it stopped.
        ours = f"{b['userops'][0]:.2f} s" if b.get("converged") else "`NotConverged` (typed error)"
        peer = (f"{b['lifetimes'][0]:.2f} s" if b.get("lifetimes") is not None
                else "`ConvergenceError`")
        why = "; ".join(x for x in [b.get("error"), b.get("lifetimes_error")] if x)
        rows.append((task, "lifetimes", ours, peer, "–", f"no interior maximum on this data: {why}"))

    lines = [
        BEGIN,
        "",
        f"Data: `userops generate --users {int(users):,}` (seed 7), one data set for every row.",
        f"Command: `{command}`.",
        f"Machine: {machine()}.",
        f"Versions: {versions()}.",
        "",
        "Times are wall clock of the measured step (OneID: from reading the CSV to one OneID per row, with",
        "the peak RSS of the process; lifecycle: stages and transitions on columns already loaded, peak RSS",
        "of the process; audience: median of 7 evaluations on data already loaded; RFM and BG/NBD: one call",
        "on data already in memory). Ratio = peer time / userops time (> 1: userops is faster).",
        "The machine is shared, so wall times are noisy; ratios of runs made back to back are the figure.",
        "",
        "| task | peer | userops | peer time | ratio | check |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {t} | {p} | {u_} | {pt} | {ra} | {c} |" for t, p, u_, pt, ra, c in rows]
    lines += ["", END]
    block = "\n".join(lines)
    with open(readme) as f:
        text = f.read()
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n## Peer comparison on the generated data (benches/compare/run_all.sh)\n\n" + block + "\n"
    with open(readme, "w") as f:
        f.write(text)
    print(block)


if __name__ == "__main__":
    main()
