"""Generate identifier rows for the OneID benchmark (CSV: record_id,kind,value,source,ts).

Model (per person p, about 2.7 rows each, so 10M rows is about 3.7M persons):
- record a{p}: phone + device (always);
- record b{p} (30% of persons): email or openid + device or phone;
- record c{p} (10%): the email alone.
Collisions, as in real data: 1% of device values are one of 2,000 shared store tablets, and
0.2% of the phones in b-records are another person's phone (a typo at the till).

    python identity_data.py ROWS OUT.csv [SEED]
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd


def generate(rows: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    persons = int(rows / 2.7)
    p = np.arange(persons)
    phone = pd.Series(p + 300_000_000).astype(str).radd("13")
    device = pd.Series(p).map("{:x}".format).radd("d")
    tablet = rng.random(persons) < 0.01
    device[tablet] = "tablet" + pd.Series(rng.integers(0, 2000, tablet.sum())).astype(str).values
    email = pd.Series(p).astype(str).radd("u") + "@ex.com"
    openid = pd.Series(p).astype(str).radd("o")
    ps = pd.Series(p).astype(str)
    frames = [
        pd.DataFrame({"record_id": "a" + ps, "kind": "phone", "value": phone}),
        pd.DataFrame({"record_id": "a" + ps, "kind": "device_id", "value": device}),
    ]
    b = rng.random(persons) < 0.3
    use_email = rng.random(persons) < 0.5
    use_dev = rng.random(persons) < 0.5
    bi = np.flatnonzero(b)
    first_kind = np.where(use_email[bi], "email", "openid")
    first_val = np.where(use_email[bi], email.values[bi], openid.values[bi])
    typo = rng.random(len(bi)) < 0.002
    other_phone = phone.values[rng.integers(0, persons, len(bi))]
    second_phone = np.where(typo, other_phone, phone.values[bi])
    second_kind = np.where(use_dev[bi], "device_id", "phone")
    second_val = np.where(use_dev[bi], device.values[bi], second_phone)
    frames.append(pd.DataFrame({"record_id": "b" + ps.values[bi], "kind": first_kind, "value": first_val}))
    frames.append(pd.DataFrame({"record_id": "b" + ps.values[bi], "kind": second_kind, "value": second_val}))
    ci = np.flatnonzero(rng.random(persons) < 0.1)
    frames.append(pd.DataFrame({"record_id": "c" + ps.values[ci], "kind": "email", "value": email.values[ci]}))
    df = pd.concat(frames, ignore_index=True).iloc[:rows]
    df["source"] = "app"
    df["ts"] = np.arange(len(df), dtype=np.int64)
    return df


if __name__ == "__main__":
    n = int(sys.argv[1])
    out = sys.argv[2]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 7
    df = generate(n, seed)
    df.to_csv(out, index=False)
    print(f"{len(df)} rows, {df['record_id'].nunique()} records -> {out}")
