//! Everything the report shows, computed from a store by the engine's own query commands: the
//! demo calls this right after its run, and `userops report --db` on a store opened later, so
//! both draw the same charts from the same state.

use std::collections::BTreeMap;

use indicatif::ProgressBar;
use serde_json::{json, Value};
use userops::analytics::{AnalyticsCommand, AnalyticsOutput, CohortTable, FunnelReport};
use userops::lifecycle::LifecycleReport;
use userops::{Command, OneId, Output, Stats, UserRef};
use userops_store::Store;

use crate::chain::{self, call, NOW};

/// The models' as-of time: the end of the generated year, business time.
pub const AS_OF: &str = "2027-01-01T00:00:00+08:00";
/// The funnel the report draws (step names of the engine's journeys).
pub const FUNNEL: [&str; 4] = ["register", "app_open", "browse", "order"];
/// Touch outcomes in funnel order.
pub const OUTCOMES: [&str; 5] = ["sent", "delivered", "opened", "clicked", "converted"];

/// Counts per label, in label order.
pub type Counts = BTreeMap<String, u64>;

/// The BG/NBD view: fitted parameters, churn probability deciles and risk bands.
#[derive(Debug, Default)]
pub struct BgNbd {
    /// r, alpha, a, b.
    pub params: Value,
    /// Users per decile of 1 − P(alive) (`[0, 0.1)`, ..., `[0.9, 1]`).
    pub deciles: [u64; 10],
    /// Users per risk band.
    pub bands: Counts,
    /// The period the fit counted repeat purchases in.
    pub freq: String,
    /// Why the fit failed, when it did.
    pub error: Option<String>,
}

fn decile(p: f64) -> usize {
    ((p * 10.0).floor().max(0.0) as usize).min(9)
}

/// The supervised churn model: holdout AUC and risk bands.
#[derive(Debug, Default)]
pub struct Logistic {
    /// AUC on the holdout.
    pub auc: Option<f64>,
    /// Users per decile of P(churn).
    pub deciles: [u64; 10],
    /// Users per risk band.
    pub bands: Counts,
    /// Rows trained on.
    pub n_train: u64,
}

/// Everything the report and the printed summary show.
#[derive(Debug)]
pub struct Results {
    /// Engine counts.
    pub stats: Stats,
    /// Identity conflicts by reason.
    pub conflicts: Counts,
    /// Lifecycle over the generated year's months.
    pub lifecycle: LifecycleReport,
    /// Cohort retention by first-activity month.
    pub cohorts: CohortTable,
    /// The [`FUNNEL`].
    pub funnel: FunnelReport,
    /// Users per RFM segment.
    pub rfm: Counts,
    /// BG/NBD churn risk.
    pub bgnbd: BgNbd,
    /// Logistic churn model.
    pub logistic: Logistic,
    /// Users by top category (preference share rank 1).
    pub top_category: Counts,
    /// Tag name → users holding a value.
    pub tags: Counts,
    /// Saved audience → size.
    pub audiences: Counts,
    /// Members per tier of the demo program (`none` below the first rung); empty when the store
    /// has no such program.
    pub tiers: Counts,
    /// Points balances summed over members.
    pub points_outstanding: i64,
    /// Planned touches per channel (the automation plan, from `channel_effectiveness`).
    pub planned: Counts,
    /// Promotion usage rows.
    pub promotions: Vec<Value>,
    /// Touch outcome counts per channel, from the recorded touches: channel → [`OUTCOMES`].
    pub touches: BTreeMap<String, [u64; 5]>,
    /// Linear attribution of orders to touch channels: channel → (conversions, value).
    pub attribution: BTreeMap<String, (f64, f64)>,
    /// Events per month and kind (identify events excluded: they are not on the timelines).
    pub intake: BTreeMap<String, Counts>,
}

fn get<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| format!("{what}: {e}"))
}

fn label(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        other => other.to_string(),
    }
}

/// Run every query. `bar` makes a progress bar of a given length and message.
pub fn collect(
    store: &mut Store,
    bar: impl Fn(u64, &str) -> ProgressBar,
) -> Result<Results, String> {
    let stats = store.engine().stats();
    let mut conflicts = Counts::new();
    for c in store.engine().identity().conflicts() {
        let reason = serde_json::to_value(&c.reason).unwrap_or(Value::Null);
        let kind = reason
            .as_object()
            .and_then(|o| o.keys().next().cloned())
            .unwrap_or_else(|| label(&reason));
        *conflicts.entry(kind).or_default() += 1;
    }

    let mut lifecycle: LifecycleReport = get(
        call(store, "lifecycle_report", json!({"through": "2026-12"}))?,
        "lifecycle_report",
    )?;
    // The generated year: late events (coupon expiries) can spill into the next January.
    lifecycle.periods.retain(|p| p.period.starts_with("2026-"));
    let cohorts: CohortTable = get(
        call(store, "cohort_retention", json!({}))?,
        "cohort_retention",
    )?;
    let funnel: FunnelReport = get(
        call(
            store,
            "funnel",
            json!({"steps": FUNNEL, "window_seconds": 30 * 86_400}),
        )?,
        "funnel",
    )?;

    let mut rfm = Counts::new();
    for row in call(store, "rfm", json!({"as_of": AS_OF}))?
        .as_array()
        .into_iter()
        .flatten()
    {
        *rfm.entry(label(&row["segment"])).or_default() += 1;
    }

    let (bgnbd, logistic) = churn_models(store)?;

    let mut top_category = Counts::new();
    for row in call(
        store,
        "preference_shares",
        json!({"as_of": AS_OF, "dimension": "category", "lookback_months": 12, "top_k": 1}),
    )?
    .as_array()
    .into_iter()
    .flatten()
    {
        *top_category.entry(label(&row["value"])).or_default() += 1;
    }

    let mut tags = Counts::new();
    for t in call(store, "tags", json!({}))?
        .as_array()
        .into_iter()
        .flatten()
    {
        tags.insert(label(&t["name"]), t["users"].as_u64().unwrap_or(0));
    }
    let mut audiences = Counts::new();
    for a in call(store, "audiences", json!({}))?
        .as_array()
        .into_iter()
        .flatten()
    {
        audiences.insert(label(&a["name"]), a["size"].as_u64().unwrap_or(0));
    }

    let persons: Vec<OneId> = store
        .engine()
        .identity()
        .persons()
        .map(|(o, _)| o)
        .collect();

    let (tiers, points_outstanding) = tiers_and_points(store, &persons, &bar);

    let mut planned = Counts::new();
    for row in call(store, "channel_effectiveness", json!({"by": "channel"}))?
        .as_array()
        .into_iter()
        .flatten()
    {
        planned.insert(label(&row["key"]), row["planned"].as_u64().unwrap_or(0));
    }
    let mut promotions = Vec::new();
    for id in chain::PROMOTIONS {
        if let Ok(u) = call(store, "promotion_usage", json!({ "id": id })) {
            promotions.push(u);
        }
    }

    let (touches, intake) = journeys(store, &persons, &bar);

    let mut attribution = BTreeMap::new();
    let a = call(store, "attribution", json!({"model": "linear"}))?;
    for c in a["channels"].as_array().into_iter().flatten() {
        attribution.insert(
            label(&c["channel"]),
            (
                c["conversions"].as_f64().unwrap_or(0.0),
                c["value"]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0.0),
            ),
        );
    }

    Ok(Results {
        stats,
        conflicts,
        lifecycle,
        cohorts,
        funnel,
        rfm,
        bgnbd,
        logistic,
        top_category,
        tags,
        audiences,
        tiers,
        points_outstanding,
        planned,
        promotions,
        touches,
        attribution,
        intake,
    })
}

/// BG/NBD on daily periods, then weekly, then monthly: a fit with no interior maximum is
/// reported, not fatal.
/// Then the supervised churn model.
fn churn_models(store: &mut Store) -> Result<(BgNbd, Logistic), String> {
    let mut bgnbd = BgNbd::default();
    let mut churn = Err(String::new());
    for freq in ["D", "W", "M"] {
        churn = call(store, "churn_risk", json!({"as_of": AS_OF, "freq": freq}));
        if churn.is_ok() {
            bgnbd.freq = match freq {
                "D" => "daily",
                "W" => "weekly",
                _ => "monthly",
            }
            .into();
            break;
        }
    }
    match churn {
        Ok(churn) => {
            bgnbd.params = churn["params"].clone();
            for row in churn["users"].as_array().into_iter().flatten() {
                let p = 1.0 - row["p_alive"].as_f64().unwrap_or(0.0);
                bgnbd.deciles[decile(p)] += 1;
                *bgnbd.bands.entry(label(&row["risk"])).or_default() += 1;
            }
        }
        Err(e) => bgnbd.error = Some(e),
    }
    let model = call(
        store,
        "churn_model",
        json!({"as_of": AS_OF, "window_days": 60, "seed": 7}),
    )?;
    let mut logistic = Logistic {
        auc: model["model"]["auc_holdout"].as_f64(),
        n_train: model["model"]["n_train"].as_u64().unwrap_or(0),
        ..Logistic::default()
    };
    for row in model["users"].as_array().into_iter().flatten() {
        logistic.deciles[decile(row["score"].as_f64().unwrap_or(0.0))] += 1;
        *logistic.bands.entry(label(&row["risk"])).or_default() += 1;
    }
    Ok((bgnbd, logistic))
}

/// Tiers and balances, member by member (a store without the demo's program has none).
fn tiers_and_points(
    store: &mut Store,
    persons: &[OneId],
    bar: &impl Fn(u64, &str) -> ProgressBar,
) -> (Counts, i64) {
    let mut tiers = Counts::new();
    let mut points_outstanding = 0i64;
    let has_program = call(
        store,
        "tier",
        json!({"user": {"oneid": persons.first().map_or(0, |o| o.0)},
               "program": chain::PROGRAM, "now": NOW}),
    )
    .is_ok();
    if has_program {
        let pb = bar(persons.len() as u64, "tiers");
        for (i, o) in persons.iter().enumerate() {
            let user = json!({"oneid": o.0});
            if let Ok(t) = call(
                store,
                "tier",
                json!({"user": user, "program": chain::PROGRAM, "now": NOW}),
            ) {
                *tiers.entry(label(&t["tier"])).or_default() += 1;
            }
            if let Ok(b) = call(
                store,
                "balance",
                json!({"user": user, "program": chain::PROGRAM}),
            ) {
                points_outstanding += b.as_i64().unwrap_or(0);
            }
            if i % 1024 == 0 {
                pb.set_position(i as u64);
            }
        }
        pb.finish_and_clear();
    }
    (tiers, points_outstanding)
}

/// Recorded touches, per channel and outcome, and the month-by-kind intake: read from every
/// person's journey (the engine's timeline of what was ingested for them).
fn journeys(
    store: &mut Store,
    persons: &[OneId],
    bar: &impl Fn(u64, &str) -> ProgressBar,
) -> (BTreeMap<String, [u64; 5]>, BTreeMap<String, Counts>) {
    let mut touches: BTreeMap<String, [u64; 5]> = BTreeMap::new();
    let mut intake: BTreeMap<String, Counts> = BTreeMap::new();
    let pb = bar(persons.len() as u64, "journeys");
    for (i, o) in persons.iter().enumerate() {
        let command = Command::Analytics(AnalyticsCommand::Journey {
            user: UserRef::OneId(*o),
        });
        let Ok(Output::Analytics(AnalyticsOutput::Journey(j))) = store.execute(command) else {
            continue;
        };
        for s in &j.steps {
            *intake
                .entry(s.kind.clone())
                .or_default()
                .entry(s.time.format("%Y-%m").to_string())
                .or_default() += 1;
            if let Some(outcome) = s.name.strip_prefix("touch_") {
                if let Some(k) = OUTCOMES.iter().position(|x| *x == outcome) {
                    touches.entry(s.channel.clone()).or_default()[k] += 1;
                }
            }
        }
        if i % 1024 == 0 {
            pb.set_position(i as u64);
        }
    }
    pb.finish_and_clear();
    (touches, intake)
}
