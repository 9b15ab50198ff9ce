"""OneID from Python at scale: `userops.resolve_identities` on a pyarrow table read from the
identity CSV (`benches/compare/identity_data.py`).

    /usr/bin/time -v .venv/bin/python benches/compare/identity_python.py /work/benchdata/identity/userops_identity_10000000.csv

Prints the CPU and wall time of reading the CSV (pyarrow) and of resolving, and the peak RSS of
the process. Needs the release wheel installed in `.venv` (see benches/README.md).
"""

from __future__ import annotations

import resource
import sys
import time

import pyarrow.csv as pc

import userops


def main() -> None:
    path = sys.argv[1]
    c0, w0 = time.process_time(), time.time()
    opts = pc.ConvertOptions(column_types={"record_id": "string", "value": "string"})
    table = pc.read_csv(path, convert_options=opts)
    c1, w1 = time.process_time(), time.time()
    out = userops.resolve_identities(table, progress=False)
    c2, w2 = time.process_time(), time.time()
    oneids = out.column("oneid")
    persons = len(oneids.unique()) - (1 if oneids.null_count else 0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"rows {out.num_rows}, persons {persons}, rejected {oneids.null_count}; "
        f"read cpu {c1 - c0:.2f} s wall {w1 - w0:.2f} s; "
        f"resolve cpu {c2 - c1:.2f} s wall {w2 - w1:.2f} s; peak RSS {rss:.2f} GiB"
    )


if __name__ == "__main__":
    main()
