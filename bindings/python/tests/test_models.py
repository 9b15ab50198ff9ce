"""User models cross-checked against the Python ``lifetimes`` package and hand-made data."""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, Optional

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.generate_data import beta_geometric_nbd_model
from lifetimes.utils import (
    calibration_and_holdout_data,
    summary_data_from_transaction_data,
)

import userops


def transactions(seed: int = 1, n: int = 4000, customers: int = 900) -> pd.DataFrame:
    """Random orders in 2024; each customer's amounts are Gamma(3, scale) with a
    customer-specific scale ~ InvGamma, the Gamma-Gamma model's own story."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01")
    ids = rng.integers(0, customers, n)
    scale = 1.0 / rng.gamma(4.0, 1.0 / 60.0, customers)
    return pd.DataFrame(
        {
            "id": ids,
            "date": start
            + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
            + pd.to_timedelta(rng.integers(0, 86400, n), unit="s"),
            "amt": rng.gamma(3.0, scale[ids]).round(2) + 0.01,
        }
    )


def rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


@pytest.mark.parametrize("freq", ["D", "W"])
def test_summary_matches_lifetimes_column_by_column(freq: str) -> None:
    tx = transactions()
    want = summary_data_from_transaction_data(
        tx, "id", "date", monetary_value_col="amt", observation_period_end="2024-12-31", freq=freq
    ).sort_index()
    got = userops.summary_data(tx, "id", "date", monetary_value_col="amt", observation_period_end="2024-12-31", freq=freq)
    assert isinstance(got, pd.DataFrame)
    assert list(got.index) == list(want.index)
    for col in ["frequency", "recency", "T", "monetary_value"]:
        np.testing.assert_allclose(got[col].to_numpy(), want[col].to_numpy(), rtol=1e-12, atol=1e-9, err_msg=col)
    assert want["frequency"].max() > 2  # the data has repeat buyers to compare


def test_summary_truncates_at_observation_end_and_defaults_to_last() -> None:
    tx = transactions(seed=2)
    want = summary_data_from_transaction_data(tx, "id", "date", observation_period_end="2024-06-30").sort_index()
    got = userops.summary_data(tx, "id", "date", observation_period_end=dt.date(2024, 6, 30))
    np.testing.assert_array_equal(got.index.to_numpy(), want.index.to_numpy())
    np.testing.assert_array_equal(got["T"].to_numpy(), want["T"].to_numpy())
    assert "monetary_value" not in got.columns
    last = userops.summary_data(tx, "id", "date")
    assert last["T"].max() == summary_data_from_transaction_data(tx, "id", "date")["T"].max()


def test_summary_returns_the_callers_table_kind() -> None:
    tx = transactions(seed=3, n=300, customers=50)
    pdf = userops.summary_data(tx, "id", "date", monetary_value_col="amt")
    plf = userops.summary_data(pl.from_pandas(tx), "id", "date", monetary_value_col="amt")
    tbl = userops.summary_data(pa.Table.from_pandas(tx, preserve_index=False), "id", "date", monetary_value_col="amt")
    assert isinstance(plf, pl.DataFrame) and isinstance(tbl, pa.Table)
    np.testing.assert_array_equal(plf["id"].to_numpy(), pdf.index.to_numpy())
    np.testing.assert_array_equal(tbl.column("recency").to_numpy(), pdf["recency"].to_numpy())


def test_calibration_holdout_matches_lifetimes() -> None:
    tx = transactions(seed=4)
    want = calibration_and_holdout_data(
        tx, "id", "date", calibration_period_end="2024-08-31", observation_period_end="2024-12-31", monetary_value_col="amt"
    ).sort_index()
    got = userops.calibration_and_holdout(tx, "id", "date", "2024-08-31", "2024-12-31", monetary_value_col="amt")
    assert list(got.index) == list(want.index)
    for col in want.columns:
        np.testing.assert_allclose(got[col].to_numpy(), want[col].to_numpy(), rtol=1e-12, err_msg=col)


@pytest.mark.parametrize("seed", [11, 12])
def test_bgnbd_fit_matches_lifetimes(seed: int) -> None:
    np.random.seed(seed)
    d = beta_geometric_nbd_model(T=40, r=0.25, alpha=4.0, a=0.8, b=2.5, size=2000)
    f, r, t = d["frequency"], d["recency"], d["T"]
    lt = BetaGeoFitter(penalizer_coef=0.0).fit(f, r, t)
    m = userops.BetaGeo().fit(f, r, t)
    for k in ["r", "alpha", "a", "b"]:
        assert rel(m.params[k], lt.params_[k]) < 1e-3, (k, m.params[k], lt.params_[k])
    # lifetimes reports the mean NLL in rescaled time; evaluate its own formula in our units.
    lt_ll = -BetaGeoFitter._negative_log_likelihood(np.log(lt.params_.to_numpy()), f.to_numpy(), r.to_numpy(), t.to_numpy(), np.ones(len(d)), 0.0) * len(d)
    assert abs(m.log_likelihood - lt_ll) / len(d) < 1e-6
    assert abs(m.log_likelihood_at(f, r, t) - m.log_likelihood) < 1e-6
    assert m.evaluations > 0
    np.testing.assert_allclose(m.p_alive(f, r, t).to_numpy(), lt.conditional_probability_alive(f, r, t), atol=1e-4)
    np.testing.assert_allclose(
        m.expected_purchases(10, f, r, t).to_numpy(),
        lt.conditional_expected_number_of_purchases_up_to_time(10, f, r, t),
        rtol=1e-3,
    )
    assert rel(m.expected_purchases(10.0), lt.expected_number_of_purchases_up_to_time(10.0)) < 1e-3


def test_gamma_gamma_and_clv_match_lifetimes() -> None:
    s = userops.summary_data(transactions(seed=5, n=6000), "id", "date", monetary_value_col="amt")
    rep = s[s["frequency"] > 0]
    lt = GammaGammaFitter(penalizer_coef=0.0).fit(rep["frequency"], rep["monetary_value"])
    g = userops.GammaGamma().fit(rep["frequency"], rep["monetary_value"])
    for k in ["p", "q", "v"]:
        assert rel(g.params[k], lt.params_[k]) < 1e-3, (k, g.params[k], lt.params_[k])
    assert abs(g.log_likelihood + lt._negative_log_likelihood_ * len(rep)) / len(rep) < 1e-6
    np.testing.assert_allclose(
        g.conditional_expected_average_profit(rep["frequency"], rep["monetary_value"]).to_numpy(),
        lt.conditional_expected_average_profit(rep["frequency"], rep["monetary_value"]).to_numpy(),
        rtol=1e-3,
    )
    # CLV on BG/NBD-generated histories (uniform random orders have no dropout to fit) with
    # spend drawn from the Gamma-Gamma story.
    np.random.seed(13)
    d = beta_geometric_nbd_model(T=40, r=0.25, alpha=4.0, a=0.8, b=2.5, size=2000)
    d = d[d["frequency"] > 0]
    d["monetary_value"] = np.random.gamma(3.0 * d["frequency"], 1.0 / (d["frequency"] * np.random.gamma(4.0, 1 / 60.0, len(d))))
    f, r, t, mv = d["frequency"], d["recency"], d["T"], d["monetary_value"]
    lbg = BetaGeoFitter(penalizer_coef=0.0).fit(f, r, t)
    bg = userops.BetaGeo().fit(f, r, t)
    want = lt.customer_lifetime_value(lbg, f, r, t, mv, time=6, discount_rate=0.01, freq="D")
    got = g.customer_lifetime_value(bg, f, r, t, mv, time=6, discount_rate=0.01, freq="D")
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=2e-3)


def test_bad_input_raises_typed_errors() -> None:
    with pytest.raises(userops.InvalidArgument) as e:
        userops.BetaGeo().fit([1, 0], [0, 0], [5, 5])  # frequency > 0 with recency 0
    assert e.value.field == "recency[0]"
    with pytest.raises(userops.InvalidArgument):
        userops.BetaGeo().fit([1], [6], [5])  # T < recency
    with pytest.raises(userops.InvalidArgument):
        userops.BetaGeo().fit([float("nan")], [1], [5])
    with pytest.raises(userops.InvalidArgument):
        userops.GammaGamma().fit([1, 2], [10.0, -3.0])
    tx = pd.DataFrame({"id": [1], "date": [pd.Timestamp("2024-01-01")], "amt": [-5.0]})
    with pytest.raises(userops.InvalidArgument):
        userops.summary_data(tx, "id", "date", monetary_value_col="amt")
    with pytest.raises(userops.NotConverged):
        # Nobody repeats: the likelihood has no maximum.
        userops.BetaGeo().fit(np.zeros(30), np.zeros(30), np.arange(10.0, 40.0))
    with pytest.raises(userops.InvalidArgument):
        userops.BetaGeo().p_alive([1], [1], [2])  # not fitted


def test_rfm_segments_on_hand_made_data() -> None:
    as_of = dt.datetime(2026, 3, 31, 12, 0)
    # (customer, days before as_of of the last order, orders, amount each) -> expected segment
    people = [
        ("a", 0, 4, 200.0, "important_value"),
        ("b", 0, 1, 500.0, "important_develop"),
        ("c", 25, 4, 150.0, "important_keep"),
        ("d", 25, 1, 400.0, "important_win_back"),
        ("e", 0, 4, 10.0, "general_value"),
        ("f", 0, 1, 50.0, "general_develop"),
        ("g", 25, 4, 10.0, "general_keep"),
        ("h", 25, 1, 50.0, "general_win_back"),
    ]
    rows = [(c, as_of - dt.timedelta(days=ago + k), amt) for c, ago, n, amt, _ in people for k in range(n)]
    orders = pl.DataFrame({"user": [r[0] for r in rows], "time": [r[1] for r in rows], "amount": [r[2] for r in rows]})
    out = userops.rfm(orders, "user", "time", "amount", as_of=as_of)
    assert isinstance(out, pl.DataFrame)
    assert out["user"].to_list() == [p[0] for p in people]
    assert out["segment"].to_list() == [p[4] for p in people]
    assert out["frequency"].to_list() == [4, 1, 4, 1, 4, 1, 4, 1]
    assert out["recency"].to_list() == [0, 0, 25, 25, 0, 0, 25, 25]
    # Quantile scores follow 1 + floor(5 * (rank_min - 1) / n), recomputed here with pandas.
    m = out["monetary"].to_pandas()
    want = (1 + (5 * (m.rank(method="min") - 1)) // len(m)).astype(int).tolist()
    assert out["m_score"].to_list() == want
    windowed = userops.rfm(orders.to_pandas(), "user", "time", "amount", as_of=as_of, window_days=10)
    assert list(windowed.index) == ["a", "b", "e", "f"]


def test_rfm_matches_a_pandas_recomputation() -> None:
    tx = transactions(seed=6)
    as_of = pd.Timestamp("2024-12-31 23:00")
    got = userops.rfm(tx, "id", "date", "amt", as_of=as_of, window_days=180, monetary="mean", split="median")
    w = tx[(tx["date"] > as_of - pd.Timedelta(days=180)) & (tx["date"] <= as_of)]
    g = w.groupby("id").agg(last=("date", "max"), frequency=("amt", "size"), monetary=("amt", "mean"))
    recency = (as_of.normalize() - g["last"].dt.normalize()).dt.days
    np.testing.assert_array_equal(got.index.to_numpy(), g.index.to_numpy())
    np.testing.assert_array_equal(got["recency"].to_numpy(), recency.to_numpy())
    np.testing.assert_array_equal(got["frequency"].to_numpy(), g["frequency"].to_numpy())
    np.testing.assert_allclose(got["monetary"].to_numpy(), g["monetary"].to_numpy())
    f_score = (1 + (5 * (g["frequency"].rank(method="min") - 1)) // len(g)).astype(int)
    np.testing.assert_array_equal(got["f_score"].to_numpy(), f_score.to_numpy())
    m_high = g["monetary"] > g["monetary"].median()
    assert (got["segment"].str.startswith("important").to_numpy() == m_high.to_numpy()).all()


def test_churn_scores_recover_known_coefficients() -> None:
    rng = np.random.default_rng(7)
    n = 20000
    recency = rng.uniform(0, 60, n)
    frequency = rng.poisson(3, n).astype(float)
    z = -1.0 + 0.05 * recency - 0.4 * frequency
    churned = rng.uniform(size=n) < 1 / (1 + np.exp(-z))
    df = pd.DataFrame({"recency": recency, "frequency": frequency, "churned": churned})
    scores, model = userops.churn_scores(df, ["recency", "frequency"], "churned", holdout=0.25, seed=3)
    assert abs(model.intercept + 1.0) < 0.12
    assert abs(model.coefficients["recency"] - 0.05) < 0.005
    assert abs(model.coefficients["frequency"] + 0.4) < 0.04
    assert model.auc_holdout is not None and 0.7 < model.auc_holdout < 0.95
    assert model.n_train + model.n_holdout == n
    assert set(scores["risk"]) <= {"low", "mid", "high"}
    row = scores.iloc[0]
    logit = model.intercept + row["contrib_recency"] + row["contrib_frequency"]
    assert abs(1 / (1 + np.exp(-logit)) - row["churn_score"]) < 1e-12
    with pytest.raises(userops.NotConverged):
        sep = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [0, 0, 1, 1]})
        userops.churn_scores(sep, ["x"], "y", holdout=0.0)


def test_preferences_shares_window_and_top_k() -> None:
    as_of = dt.datetime(2026, 5, 31)
    df = pd.DataFrame(
        {
            "user": ["u1", "u1", "u1", "u1", "u2"],
            "category": ["fruit", "wine", "fruit", "toys", "wine"],
            "time": [as_of, as_of - dt.timedelta(days=1), as_of - dt.timedelta(days=10), as_of - dt.timedelta(days=95), as_of],
        }
    )
    out = userops.preferences(df, "user", "category", "time", as_of=as_of)
    assert out.to_dict("list") == {
        "user": ["u1", "u1", "u2"],
        "category": ["fruit", "wine", "wine"],
        "weight": [2.0, 1.0, 1.0],
        "share": [2 / 3, 1 / 3, 1.0],
        "rank": [1, 2, 1],
    }
    top = userops.preferences(pl.from_pandas(df), "user", "category", top_k=1)
    assert top["category"].to_list() == ["fruit", "wine"]


def test_engine_model_commands() -> None:
    e = userops.Engine()

    def order(key: str, user: str, time: str, amount: str, category: str) -> None:
        e.ingest(
            {
                "kind": "order", "key": key, "time": time, "source": {"platform": "app", "program": "b"},
                "user": {"kind": "member_no", "value": user}, "order_id": key, "amount": amount,
                "channel": "app", "region": "shanghai",
                "lines": [{"sku": "s", "category": category, "price": amount, "qty": 1}],
            }
        )

    order("o1", "A", "2026-03-30T10:00:00+08:00", "300.00", "fruit")
    order("o2", "A", "2026-03-31T10:00:00+08:00", "100.00", "wine")
    order("o3", "B", "2026-01-05T10:00:00+08:00", "20.00", "fruit")
    as_of = dt.datetime(2026, 3, 31, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    rows = e.rfm(as_of, output="arrow").to_pylist()
    assert [(r["oneid"], r["frequency"], r["segment"]) for r in rows] == [
        (1, 2, "important_value"),
        (2, 1, "general_win_back"),
    ]
    prefs = e.preference_shares(as_of, "category", top_k=1, output="arrow").to_pylist()
    assert [(p["oneid"], p["value"], p["share"]) for p in prefs] == [(1, "fruit", 0.75), (2, "fruit", 1.0)]
    recent = e.preference_shares(as_of, "category", lookback_months=1, output="polars")
    assert recent["oneid"].to_list() == [1, 1]  # B's January order is outside one month
    cells = e.cross_table(as_of, "region", "category", lookback_months=6, output="arrow").to_pylist()
    assert {(c["row"], c["col"]): c["amount"] for c in cells} == {("shanghai", "fruit"): 320.0, ("shanghai", "wine"): 100.0}
    assert e.high_value_users(as_of, rule={"min_amount": 350})["high_value"].tolist() == [True, False]
    with pytest.raises(userops.InvalidArgument):
        e.preference_shares(as_of, "region")
    with pytest.raises(userops.InvalidArgument):
        e.churn_risk(as_of, low_below=0.9, high_from=0.1)


_AS_OF = "2026-03-01T00:00:00Z"


@pytest.mark.parametrize(
    "method,args,path,flatten",
    [
        ("rfm", {}, None, {}),
        ("churn_risk", {"freq": "W"}, "users", {}),
        ("churn_model", {}, "users", {"features": "", "contributions": "contribution_"}),
        ("preference_shares", {"dimension": "category"}, None, {}),
        ("cross_table", {"rows": "channel", "cols": "category"}, None, {}),
        ("activity_scores", {}, None, {}),
        ("high_value_users", {"rule": {"min_orders": 3}}, None, {}),
    ],
)
def test_engine_model_tables_hold_the_engine_rows(
    method: str, args: Dict[str, Any], path: Optional[str], flatten: Dict[str, str]
) -> None:
    """Every model method's table has exactly the rows and values of the engine's own output
    (``Engine.call``), nested lists spread over named columns; OneIDs stay unsigned integers."""
    e = userops.sample_engine(buyers=300)
    out = e.call(method, as_of=_AS_OF, **args)
    expected = out[path] if path else out
    assert len(expected) > 0
    got = getattr(e, method)(_AS_OF, output="arrow", **args)
    table = got[0] if isinstance(got, tuple) else got
    if isinstance(got, tuple):
        rest = {k: v for k, v in out.items() if k != path}
        fit = got[1]
        assert fit == (rest["model"] if method == "churn_model" else rest)
    rows = table.to_pylist()
    assert len(rows) == len(expected)
    for want, row in zip(expected, rows):
        flat: Dict[str, Any] = {}
        for k, v in want.items():
            if k in flatten:
                names = e.CHURN_FEATURES
                flat.update({flatten[k] + n: x for n, x in zip(names, v)})
            elif k != "customer":  # high_value_users repeats the OneID as `customer`
                flat[k] = v
        assert row == flat
    if "oneid" in table.column_names:
        assert str(table.schema.field("oneid").type) == "uint64"
    for kind in ("pandas", "polars"):
        other = getattr(e, method)(_AS_OF, output=kind, **args)
        other = other[0] if isinstance(other, tuple) else other
        assert type(other).__module__.split(".")[0] == kind and len(other) == len(rows)
        if "oneid" in other.columns:
            assert str(other["oneid"].dtype) == "UInt64"  # pandas nullable and polars both say so
    with pytest.raises(userops.InvalidArgument):
        getattr(e, method)(_AS_OF, output="csv", **args)


def test_a_bad_model_tag_name_is_reported_at_tag() -> None:
    """The tag's name is checked where it is written; the error names the argument ``tag`` the
    caller passed (not the checker's own ``name``), and nothing changes."""
    e = userops.sample_engine()
    before = e._native.state_fingerprint()
    with pytest.raises(userops.InvalidArgument) as caught:
        e.rfm("2026-03-01T00:00:00Z", tag="1bad")
    assert caught.value.field == "tag"
    assert e._native.state_fingerprint() == before
