"""The minimum Rust version the workspace states (`rust-version` in Cargo.toml) is one its
shipped crates can be built with: no crate they depend on (normal and build dependencies, on
this platform) declares a newer `rust-version`. Clippy's `incompatible_msrv` lint covers the
other half, standard-library items newer than the stated version used in our own code.

Dev-dependencies are not checked: they build the tests, which need a newer toolchain than the
one users need (proptest asks for 1.88).

Usage: python3 scripts/check_msrv.py   (run from anywhere; exits 1 and lists the offenders)
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHIPPED = ["userops", "userops-store", "userops-cli", "userops-python", "userops-c"]


def version(text: str) -> tuple[int, ...]:
    """`1.85` and `1.85.0` compare equal."""
    return tuple(([int(p) for p in text.split(".")] + [0, 0])[:3])


def main() -> int:
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked"],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
    )
    stated = {p["rust_version"] for p in meta["packages"] if p["id"] in meta["workspace_members"]}
    stated.discard(None)
    if len(stated) != 1:
        print(f"check_msrv: workspace crates state {sorted(stated)}, expected one rust-version")
        return 1
    msrv = stated.pop()
    tree = subprocess.run(
        ["cargo", "tree", "--locked", "-e", "normal,build", "--prefix", "none", "-f", "{p}"]
        + [arg for name in SHIPPED for arg in ("-p", name)],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    used = {(line.split()[0], line.split()[1].lstrip("v")) for line in tree.splitlines() if line.strip()}
    newer = sorted(
        f"{p['name']} {p['version']} needs {p['rust_version']}"
        for p in meta["packages"]
        if (p["name"], p["version"]) in used
        and p.get("rust_version")
        and version(p["rust_version"]) > version(msrv)
    )
    if newer:
        print(f"check_msrv: rust-version is {msrv}, but these dependencies need more:")
        print("\n".join("  " + n for n in newer))
        return 1
    print(f"check_msrv: {len(used)} crates the shipped crates build from accept Rust {msrv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
