//! The models' queries over their event log: each reads the log, the identity graph (to map
//! a record's OneID to its surviving person) and the business time zone, nothing else.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, FixedOffset, Utc};
use rust_decimal::Decimal;

use super::commands::*;
use super::{
    activity_scores, high_value_features, lookback_start, preferences, rfm, summary_data,
    ActivityLevels, BgNbdFit, Freq, HighValueInput, HighValueRule, Monetary, RiskBands, Split,
};
use crate::error::Error;
use crate::event::Event;
use crate::identity::IdentityGraph;
use crate::ids::OneId;

/// What the models read besides their own log.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ModelsReads<'a> {
    /// Maps a record's OneID to the person it belongs to now.
    pub(crate) identity: &'a IdentityGraph,
    /// The business time zone: models see wall-clock times.
    pub(crate) tz: FixedOffset,
}

impl ModelsLog {
    /// Answer a models command (nothing is written: a `tag` is the engine's to apply).
    ///
    /// # Errors
    ///
    /// `invalid_argument` for parameters the model cannot take; `not_converged` for a fit that
    /// does not converge.
    pub(crate) fn query(
        &self,
        c: ModelsCommand,
        reads: ModelsReads<'_>,
    ) -> Result<ModelsOutput, Error> {
        Query { log: self, reads }.models_query(c)
    }
}

/// One query: the log and its reads.
struct Query<'a> {
    log: &'a ModelsLog,
    reads: ModelsReads<'a>,
}

impl Query<'_> {
    fn wall(&self, t: i64) -> i64 {
        t + i64::from(self.reads.tz.local_minus_utc())
    }

    fn live(&self, user: u64) -> u64 {
        self.reads
            .identity
            .canonical(OneId(user))
            .map_or(user, |o| o.0)
    }

    fn models_query(&self, c: ModelsCommand) -> Result<ModelsOutput, Error> {
        match c {
            ModelsCommand::Rfm {
                as_of,
                window_days,
                monetary,
                split,
                ..
            } => self.query_rfm(as_of, window_days, monetary, split),
            ModelsCommand::ChurnRisk {
                as_of,
                freq,
                low_below,
                high_from,
                ..
            } => self.query_churn_risk(as_of, freq, low_below, high_from),
            ModelsCommand::PreferenceShares {
                as_of,
                dimension,
                lookback_months,
                top_k,
                price_bands,
                ..
            } => {
                self.query_preference_shares(as_of, dimension, lookback_months, top_k, price_bands)
            }
            ModelsCommand::CrossTable {
                as_of,
                rows,
                cols,
                lookback_months,
                price_bands,
            } => self.query_cross_table(as_of, rows, cols, lookback_months, price_bands),
            ModelsCommand::ActivityScores {
                as_of,
                half_life_days,
                weights,
                levels,
                ..
            } => self.query_activity_scores(as_of, half_life_days, weights, levels),
            ModelsCommand::ChurnModel {
                as_of,
                window_days,
                holdout,
                seed,
                low_below,
                high_from,
                ..
            } => self.query_churn_model(as_of, window_days, holdout, seed, low_below, high_from),
            ModelsCommand::HighValueUsers {
                as_of,
                window_days,
                rule,
            } => self.query_high_value_users(as_of, window_days, rule),
        }
    }

    /// RFM scores and segments of every buyer, from the orders in order.
    fn query_rfm(
        &self,
        as_of: DateTime<Utc>,
        window_days: Option<u32>,
        monetary: Monetary,
        split: Split,
    ) -> Result<ModelsOutput, Error> {
        let orders = self.orders_in_order();
        let users: Vec<u64> = orders.iter().map(|o| self.live(o.user)).collect();
        let times: Vec<i64> = orders.iter().map(|o| self.wall(o.time)).collect();
        let amounts: Vec<f64> = orders.iter().map(|o| money(o.amount)).collect();
        let mut spec = super::RfmSpec::as_of(self.wall(as_of.timestamp()))
            .monetary(monetary)
            .split(split);
        if let Some(d) = window_days {
            spec = spec.window_days(d);
        }
        let r = rfm(&users, &times, &amounts, &spec)?;
        Ok(ModelsOutput::Rfm(
            (0..r.customer.len())
                .map(|i| RfmRow {
                    oneid: OneId(r.customer[i]),
                    recency: r.recency[i],
                    frequency: r.frequency[i],
                    monetary: r.monetary[i],
                    r_score: r.r_score[i],
                    f_score: r.f_score[i],
                    m_score: r.m_score[i],
                    segment: r.segment[i],
                })
                .collect(),
        ))
    }

    /// BG/NBD churn risk of every buyer with history before `as_of`.
    fn query_churn_risk(
        &self,
        as_of: DateTime<Utc>,
        freq: Freq,
        low_below: f64,
        high_from: f64,
    ) -> Result<ModelsOutput, Error> {
        let log = &self.log;
        let bands = RiskBands::new(low_below, high_from)?;
        let end = self.wall(as_of.timestamp());
        let (users, times): (Vec<u64>, Vec<i64>) = log
            .orders
            .iter()
            .map(|o| (self.live(o.user), self.wall(o.time)))
            .filter(|&(_, t)| t <= end)
            .unzip();
        let s = summary_data(&users, &times, None, Some(end), freq)?;
        // Customers who bought in the observation end's own period have T = 0 and carry
        // no information about dropout; BG/NBD needs T > 0.
        let keep: Vec<usize> = (0..s.len()).filter(|&i| s.t[i] > 0.0).collect();
        let pick = |v: &[f64]| keep.iter().map(|&i| v[i]).collect::<Vec<f64>>();
        let (f, r, t) = (pick(&s.frequency), pick(&s.recency), pick(&s.t));
        // Fitted on the buyers sorted by (frequency, recency, T): the likelihood is
        // summed in an order that depends on the data alone, not on OneID numbers.
        let mut by_value: Vec<usize> = (0..f.len()).collect();
        by_value.sort_by(|&a, &b| {
            (f[a].total_cmp(&f[b]))
                .then(r[a].total_cmp(&r[b]))
                .then(t[a].total_cmp(&t[b]))
        });
        let sorted = |v: &[f64]| by_value.iter().map(|&i| v[i]).collect::<Vec<f64>>();
        let fit = BgNbdFit::fit(&sorted(&f), &sorted(&r), &sorted(&t), None)?;
        let users = keep
            .iter()
            .enumerate()
            .map(|(k, &i)| {
                let p = fit.params.p_alive(f[k], r[k], t[k]);
                ChurnRow {
                    oneid: OneId(s.customer[i]),
                    frequency: f[k],
                    recency: r[k],
                    t: t[k],
                    p_alive: p,
                    risk: bands.band(1.0 - p),
                }
            })
            .collect();
        Ok(ModelsOutput::ChurnRisk(ChurnRisk {
            params: fit.params,
            log_likelihood: fit.log_likelihood,
            users,
        }))
    }

    /// Each person's top values of a dimension by share of spend.
    fn query_preference_shares(
        &self,
        as_of: DateTime<Utc>,
        dimension: Dimension,
        lookback_months: u32,
        top_k: Option<u32>,
        price_bands: Vec<Decimal>,
    ) -> Result<ModelsOutput, Error> {
        check_bands(&price_bands)?;
        let at = self.wall(as_of.timestamp());
        let lo = lookback_start(at, lookback_months)?;
        let weights = self.dimension_weights(dimension, &price_bands, lo, at)?;
        // Value keys in text order: equal weights then rank by value text.
        let labels: Vec<&str> = weights
            .keys()
            .map(|k| k.1.as_str())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let key = |l: &str| labels.partition_point(|x| *x < l) as u64;
        let (mut c, mut v, mut w) = (vec![], vec![], vec![]);
        for ((user, label), weight) in &weights {
            c.push(*user);
            v.push(key(label));
            w.push(money(*weight));
        }
        let p = preferences(&c, &v, Some(&w), None, top_k)?;
        Ok(ModelsOutput::Preferences(
            (0..p.customer.len())
                .map(|i| PreferenceRow {
                    oneid: OneId(p.customer[i]),
                    value: labels[p.value[i] as usize].to_owned(),
                    weight: p.weight[i],
                    share: p.share[i],
                    rank: p.rank[i],
                })
                .collect(),
        ))
    }

    /// Spend (or, with a behaviour dimension, activity counts) by two dimensions.
    fn query_cross_table(
        &self,
        as_of: DateTime<Utc>,
        rows: Dimension,
        cols: Dimension,
        lookback_months: u32,
        price_bands: Vec<Decimal>,
    ) -> Result<ModelsOutput, Error> {
        let log = &self.log;
        check_bands(&price_bands)?;
        let at = self.wall(as_of.timestamp());
        let lo = lookback_start(at, lookback_months)?;
        let behaviour = |d: Dimension| matches!(d, Dimension::ActivityType | Dimension::Function);
        if behaviour(rows) || behaviour(cols) {
            return self.location_cross(rows, cols, lo, at);
        }
        let mut cells: BTreeMap<(String, String), Decimal> = BTreeMap::new();
        for o in &log.orders {
            let t = self.wall(o.time);
            if t <= lo || t > at {
                continue;
            }
            for (cat, price, qty) in &o.lines {
                let row = line_label(rows, "rows", o, cat, *price, &price_bands)?;
                let col = line_label(cols, "cols", o, cat, *price, &price_bands)?;
                let cell = cells.entry((row, col)).or_default();
                *cell = cell.saturating_add(line_amount(*price, *qty));
            }
        }
        Ok(ModelsOutput::Cross(
            cells
                .into_iter()
                .map(|((row, col), amount)| CrossRow {
                    row,
                    col,
                    amount: money(amount),
                })
                .collect(),
        ))
    }

    /// Decayed activity scores of every person, and their levels.
    fn query_activity_scores(
        &self,
        as_of: DateTime<Utc>,
        half_life_days: f64,
        weights: BTreeMap<String, f64>,
        levels: Option<Vec<(String, f64)>>,
    ) -> Result<ModelsOutput, Error> {
        let log = &self.log;
        let levels = match levels {
            Some(l) => ActivityLevels::new(l, "dormant")?,
            None => ActivityLevels::default(),
        };
        if let Some((k, w)) = weights.iter().find(|(_, w)| !(w.is_finite() && **w >= 0.0)) {
            return Err(Error::invalid_argument(
                format!("weights.{k}"),
                format!("{w} is not a weight ≥ 0"),
            ));
        }
        if let Some(k) = weights
            .keys()
            .find(|k| Event::KINDS.contains(&k.as_str()) && !SCORED_KINDS.contains(&k.as_str()))
        {
            return Err(Error::invalid_argument(
                format!("weights.{k}"),
                format!(
                    "{k} events do not count toward the activity score (only {})",
                    SCORED_KINDS.join(", ")
                ),
            ));
        }
        // The event's own type first, then its kind.
        let weight = |ty: Option<&str>, kind: &str| {
            ty.and_then(|t| weights.get(t))
                .or_else(|| weights.get(kind))
                .copied()
                .unwrap_or(1.0)
        };
        let (mut c, mut t, mut w) = (vec![], vec![], vec![]);
        for b in &log.behaviours {
            c.push(self.live(b.user));
            t.push(self.wall(b.time));
            w.push(weight(Some(&b.kind), &b.source));
        }
        for o in &log.orders {
            c.push(self.live(o.user));
            t.push(self.wall(o.time));
            w.push(weight(None, "order"));
        }
        let s = activity_scores(
            &c,
            &t,
            Some(&w),
            self.wall(as_of.timestamp()),
            half_life_days,
        )?;
        Ok(ModelsOutput::Activity(
            s.customer
                .iter()
                .zip(&s.score)
                .map(|(&u, &score)| ActivityRow {
                    oneid: OneId(u),
                    score,
                    level: levels.level(score).to_owned(),
                })
                .collect(),
        ))
    }

    /// The supervised churn model fitted on the window before `as_of`, scoring the window after.
    fn query_churn_model(
        &self,
        as_of: DateTime<Utc>,
        window_days: u32,
        holdout: f64,
        seed: u64,
        low_below: f64,
        high_from: f64,
    ) -> Result<ModelsOutput, Error> {
        let bands = RiskBands::new(low_below, high_from)?;
        if window_days == 0 {
            return Err(Error::invalid_argument("window_days", "must be ≥ 1"));
        }
        let at = self.wall(as_of.timestamp());
        let w = i64::from(window_days) * 86_400;
        let events = self.event_times();
        let mut train = churn_features(&events, at - w, w);
        // Rows sorted by their values, so that the fit and the seeded holdout depend on
        // the data alone, not on OneID numbers (which follow the ingest order).
        train.sort_by(|a, b| {
            a.1.iter()
                .zip(&b.1)
                .fold(std::cmp::Ordering::Equal, |o, (x, y)| {
                    o.then(x.total_cmp(y))
                })
                .then(a.2.cmp(&b.2))
        });
        let names: Vec<String> = CHURN_FEATURES.iter().map(|s| (*s).to_owned()).collect();
        let cols: Vec<Vec<f64>> = (0..CHURN_FEATURES.len())
            .map(|j| train.iter().map(|(_, f, _)| f[j]).collect())
            .collect();
        let labels: Vec<bool> = train.iter().map(|(_, _, churned)| *churned).collect();
        let refs: Vec<&[f64]> = cols.iter().map(Vec::as_slice).collect();
        let model = super::fit_churn_model(&names, &refs, &labels, holdout, seed)?;
        let users = churn_features(&events, at, w)
            .into_iter()
            .map(|(u, f, _)| {
                let score = model.model.predict(&f);
                SupervisedChurnRow {
                    oneid: OneId(u),
                    contributions: model.model.contributions(&f),
                    features: f.to_vec(),
                    score,
                    risk: bands.band(score),
                }
            })
            .collect();
        Ok(ModelsOutput::SupervisedChurn(SupervisedChurn {
            model,
            users,
        }))
    }

    /// The high-value features of every person and whether the rule passes.
    fn query_high_value_users(
        &self,
        as_of: DateTime<Utc>,
        window_days: Option<u32>,
        rule: HighValueRule,
    ) -> Result<ModelsOutput, Error> {
        let log = &self.log;
        let orders = self.orders_in_order();
        let oc: Vec<u64> = orders.iter().map(|o| self.live(o.user)).collect();
        let ot: Vec<i64> = orders.iter().map(|o| self.wall(o.time)).collect();
        let oa: Vec<f64> = orders.iter().map(|o| money(o.amount)).collect();
        let mc: Vec<u64> = log.messages.iter().map(|m| self.live(m.user)).collect();
        let mt: Vec<i64> = log.messages.iter().map(|m| self.wall(m.time)).collect();
        let rt: Vec<Option<u64>> = log
            .messages
            .iter()
            .map(|m| m.reply_to.map(|r| self.live(r)))
            .collect();
        let input = HighValueInput {
            order_customers: &oc,
            order_times: &ot,
            order_amounts: &oa,
            message_customers: &mc,
            message_times: &mt,
            reply_to: &rt,
        };
        let f = high_value_features(&input, self.wall(as_of.timestamp()), window_days)?;
        Ok(ModelsOutput::HighValue(
            f.into_iter()
                .map(|features| HighValueRow {
                    oneid: OneId(features.customer),
                    high_value: rule.passes(&features),
                    features,
                })
                .collect(),
        ))
    }

    /// Location × activity (or function): activity events (counts) in `(lo, at]` by the
    /// location of the user doing them — the region of the user's latest order up to `at`
    /// (`"(unknown)"` without one) — and the activity type or function.
    fn location_cross(
        &self,
        rows: Dimension,
        cols: Dimension,
        lo: i64,
        at: i64,
    ) -> Result<ModelsOutput, Error> {
        let (kind, flip) = match (rows, cols) {
            (Dimension::Region, k @ (Dimension::ActivityType | Dimension::Function)) => (k, false),
            (k @ (Dimension::ActivityType | Dimension::Function), Dimension::Region) => (k, true),
            _ => {
                return Err(Error::invalid_argument(
                    "cols",
                    "activity type and function cross with region only (location × activity)",
                ))
            }
        };
        let log = &self.log;
        // The latest order up to `at` gives each user's location; of orders at the same
        // latest instant, the region that sorts first (not the one ingested last).
        let mut location: BTreeMap<u64, (i64, &str)> = BTreeMap::new();
        for o in &log.orders {
            let t = self.wall(o.time);
            if t > at || o.region.is_empty() {
                continue;
            }
            let e = location.entry(self.live(o.user)).or_insert((t, &o.region));
            if t > e.0 || (t == e.0 && o.region.as_str() < e.1) {
                *e = (t, &o.region);
            }
        }
        let source = if kind == Dimension::ActivityType {
            "activity"
        } else {
            "behavior"
        };
        let mut cells: BTreeMap<(String, String), f64> = BTreeMap::new();
        for b in &log.behaviours {
            let t = self.wall(b.time);
            if b.source != source || t <= lo || t > at {
                continue;
            }
            let place = location
                .get(&self.live(b.user))
                .map_or("(unknown)", |l| l.1)
                .to_owned();
            let key = if flip {
                (b.kind.clone(), place)
            } else {
                (place, b.kind.clone())
            };
            *cells.entry(key).or_default() += 1.0;
        }
        Ok(ModelsOutput::Cross(
            cells
                .into_iter()
                .map(|((row, col), amount)| CrossRow { row, col, amount })
                .collect(),
        ))
    }

    /// Each user's weight per value of `dimension` over the events in `(lo, at]` (wall
    /// seconds): spend on order lines for the order-line dimensions, event counts for the
    /// others. Summed in decimals, so no weight depends on the order events came in.
    fn dimension_weights(
        &self,
        dimension: Dimension,
        price_bands: &[Decimal],
        lo: i64,
        at: i64,
    ) -> Result<BTreeMap<(u64, String), Decimal>, Error> {
        let log = &self.log;
        let inside = |t: i64| t > lo && t <= at;
        let mut weights: BTreeMap<(u64, String), Decimal> = BTreeMap::new();
        match dimension {
            Dimension::Category | Dimension::PriceBand | Dimension::Channel => {
                for o in log.orders.iter().filter(|o| inside(self.wall(o.time))) {
                    let user = self.live(o.user);
                    for (cat, price, qty) in &o.lines {
                        let label =
                            line_label(dimension, "dimension", o, cat, *price, price_bands)?;
                        let w = weights.entry((user, label)).or_default();
                        *w = w.saturating_add(line_amount(*price, *qty));
                    }
                }
            }
            Dimension::ActivityType | Dimension::Function | Dimension::Touchpoint => {
                for b in log.behaviours.iter().filter(|b| inside(self.wall(b.time))) {
                    let label = match dimension {
                        Dimension::ActivityType if b.source == "activity" => &b.kind,
                        Dimension::Function if b.source == "behavior" => &b.kind,
                        Dimension::Touchpoint
                            if b.source == "behavior" && !b.channel.is_empty() =>
                        {
                            &b.channel
                        }
                        _ => continue,
                    };
                    let w = weights
                        .entry((self.live(b.user), label.clone()))
                        .or_default();
                    *w += Decimal::ONE;
                }
            }
            Dimension::Region => {
                return Err(Error::invalid_argument(
                    "dimension",
                    "region is a cross-table dimension, not a preference",
                ))
            }
        }
        Ok(weights)
    }

    /// The orders with the earliest first (then the smallest amount): models that sum amounts
    /// in floating point read them in this order, so a sum does not depend on the order the
    /// orders were ingested in.
    fn orders_in_order(&self) -> Vec<&OrderRecord> {
        let mut v: Vec<&OrderRecord> = self.log.orders.iter().collect();
        v.sort_by(|a, b| a.time.cmp(&b.time).then(a.amount.cmp(&b.amount)));
        v
    }
}

/// Price band bounds must ascend strictly: each band is `[previous bound, bound)`.
fn check_bands(bounds: &[Decimal]) -> Result<(), Error> {
    match bounds.windows(2).position(|w| w[0] >= w[1]) {
        Some(i) => Err(Error::invalid_argument(
            format!("price_bands[{}]", i + 1),
            format!(
                "{} does not exceed the bound before it ({}): bounds ascend",
                bounds[i + 1],
                bounds[i]
            ),
        )),
        None => Ok(()),
    }
}

/// The event kinds the activity score counts.
const SCORED_KINDS: [&str; 3] = ["activity", "behavior", "order"];

/// An order line's amount (price × qty).
fn line_amount(price: Decimal, qty: u32) -> Decimal {
    price.saturating_mul(Decimal::from(qty))
}

/// The label of an order line along an order-line dimension; an error naming `field` for
/// another dimension.
fn line_label(
    d: Dimension,
    field: &str,
    o: &OrderRecord,
    category: &str,
    price: Decimal,
    bands: &[Decimal],
) -> Result<String, Error> {
    Ok(match d {
        Dimension::Region => o.region.clone(),
        Dimension::Category => category.to_owned(),
        Dimension::Channel => o.channel.clone(),
        Dimension::PriceBand => band_label(
            bands.iter().position(|b| price < *b).unwrap_or(bands.len()),
            bands,
        ),
        other => {
            return Err(Error::invalid_argument(
                field,
                format!("{other:?} is not an order-line dimension"),
            ))
        }
    })
}

/// (user, wall time, is an order) of every order, activity and behaviour, sorted.
type EventTimes = Vec<(u64, i64, bool)>;

impl Query<'_> {
    fn event_times(&self) -> EventTimes {
        let log = &self.log;
        let mut ev: EventTimes = log
            .orders
            .iter()
            .map(|o| (self.live(o.user), self.wall(o.time), true))
            .chain(
                log.behaviours
                    .iter()
                    .map(|b| (self.live(b.user), self.wall(b.time), false)),
            )
            .collect();
        ev.sort_unstable();
        ev
    }
}

/// Features at `at` over a window of `w` seconds for every user with an event at or before
/// `at`, and the label: no event in (at, at + w].
fn churn_features(events: &[(u64, i64, bool)], at: i64, w: i64) -> Vec<(u64, [f64; 5], bool)> {
    let day = 86_400.0;
    let mut out = Vec::new();
    let mut i = 0;
    while i < events.len() {
        let u = events[i].0;
        let j = i + events[i..].partition_point(|e| e.0 == u);
        let mine = &events[i..j];
        i = j;
        let past: Vec<&(u64, i64, bool)> = mine.iter().filter(|e| e.1 <= at).collect();
        let (Some(first), Some(last)) = (past.first(), past.last()) else {
            continue;
        };
        let in_window =
            |lo: i64, hi: i64| past.iter().filter(|e| e.1 > lo && e.1 <= hi).count() as f64;
        let frequency = past.iter().filter(|e| e.2 && e.1 > at - w).count() as f64;
        let trend = in_window(at - w / 2, at) - in_window(at - w, at - w / 2);
        let activity: f64 = past
            .iter()
            .map(|e| (-((at - e.1) as f64) / (30.0 * day)).exp2())
            .sum();
        let churned = !mine.iter().any(|e| e.1 > at && e.1 <= at + w);
        out.push((
            u,
            [
                (at - last.1) as f64 / day,
                frequency,
                (at - first.1) as f64 / day,
                trend,
                activity,
            ],
            churned,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::Engine;

    fn ingest(e: &mut Engine, v: Value) {
        e.ingest_json(&v.to_string()).unwrap();
    }

    fn order(
        e: &mut Engine,
        key: &str,
        user: &str,
        time: &str,
        amount: &str,
        cat: &str,
        channel: &str,
    ) {
        ingest(
            e,
            json!({"kind": "order", "key": key, "time": time,
                "source": {"platform": "app", "program": "brand-a"},
                "user": {"kind": "member_no", "value": user}, "order_id": key, "amount": amount,
                "channel": channel, "region": "shanghai",
                "lines": [{"sku": "s", "category": cat, "price": amount, "qty": 1}]}),
        );
    }

    fn call(e: &mut Engine, method: &str, args: Value) -> Value {
        serde_json::from_str(&e.call_json(method, &args.to_string()).unwrap()).unwrap()
    }

    #[test]
    fn commands_read_the_ingested_events() {
        let mut e = Engine::default();
        order(
            &mut e,
            "o1",
            "A",
            "2026-03-30T10:00:00+08:00",
            "300.00",
            "fruit",
            "app",
        );
        order(
            &mut e,
            "o2",
            "A",
            "2026-03-31T10:00:00+08:00",
            "300.00",
            "wine",
            "app",
        );
        order(
            &mut e,
            "o3",
            "A",
            "2026-03-31T11:00:00+08:00",
            "100.00",
            "fruit",
            "jd",
        );
        order(
            &mut e,
            "o4",
            "B",
            "2026-01-02T10:00:00+08:00",
            "20.00",
            "fruit",
            "jd",
        );
        // 2026-03-31T23:30+08:00 is still March 31 in the business zone (UTC: March 31 15:30).
        let as_of = "2026-03-31T23:30:00+08:00";
        let r = call(&mut e, "rfm", json!({"as_of": as_of}));
        assert_eq!(r[0]["oneid"], 1);
        assert_eq!(r[0]["recency"], 0);
        assert_eq!(r[0]["frequency"], 3);
        assert_eq!(r[0]["monetary"], 700.0);
        assert_eq!(r[0]["segment"], "important_value");
        assert_eq!(r[1]["recency"], 88);
        assert_eq!(r[1]["segment"], "general_win_back");
        let p = call(
            &mut e,
            "preference_shares",
            json!({"as_of": as_of, "dimension": "category"}),
        );
        assert_eq!(p[0]["value"], "fruit");
        assert_eq!(p[0]["share"], 400.0 / 700.0);
        assert_eq!(p.as_array().unwrap().len(), 3); // B's January order is outside 3 months
        let ch = call(
            &mut e,
            "preference_shares",
            json!({"as_of": as_of, "dimension": "channel", "top_k": 1}),
        );
        assert_eq!(ch[0]["value"], "app");
        let x = call(
            &mut e,
            "cross_table",
            json!({"as_of": as_of, "rows": "category", "cols": "price_band",
            "price_bands": ["100", "250"], "lookback_months": 12}),
        );
        // Sorted by (row, col) label text.
        assert_eq!(
            x,
            json!([
            {"row": "fruit", "col": "100-250", "amount": 100.0},
            {"row": "fruit", "col": "<100", "amount": 20.0},
            {"row": "fruit", "col": ">=250", "amount": 300.0},
            {"row": "wine", "col": ">=250", "amount": 300.0}])
        );
        let a = call(
            &mut e,
            "activity_scores",
            json!({"as_of": as_of, "half_life_days": 1000, "levels": [["busy", 2.5]]}),
        );
        assert_eq!(a[0]["level"], "busy"); // 3 orders in the last two days ≈ 3
        assert_eq!(a[1]["level"], "dormant"); // 1 order 88 days ago ≈ 0.94
        let h = call(
            &mut e,
            "high_value_users",
            json!({"as_of": as_of, "rule": {"min_orders": 2}}),
        );
        assert_eq!(h[0]["high_value"], true);
        assert_eq!(h[1]["high_value"], false);
        assert!(e.call_json("rfm", r#"{"as_of": "yesterday"}"#).is_err());
        // The log survives a snapshot.
        let back = Engine::restore(&e.snapshot()).unwrap();
        assert_eq!(back.state.models, e.state.models);
    }

    #[test]
    fn churn_risk_fits_bgnbd_on_engine_orders() {
        let mut e = Engine::default();
        let mut seed = 9u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as f64 / (1u64 << 31) as f64
        };
        // 300 users: each buys on a random day of 2025, then repeats at its own rate until it
        // drops out (a crude BG/NBD story: heterogeneous rates and dropout).
        let mut k = 0;
        for u in 0..300 {
            let rate = 0.03 + 0.15 * next();
            let mut day = (next() * 200.0) as i64;
            loop {
                let date = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap()
                    + chrono::Days::new(day as u64);
                k += 1;
                order(
                    &mut e,
                    &format!("o{k}"),
                    &format!("U{u}"),
                    &format!("{date}T12:00:00+08:00"),
                    "10.00",
                    "c",
                    "app",
                );
                if next() < 0.12 {
                    break;
                }
                day += 1 + (-(1.0 - next()).ln() / rate) as i64;
                if day > 364 {
                    break;
                }
            }
        }
        let out = call(
            &mut e,
            "churn_risk",
            json!({"as_of": "2025-12-31T23:00:00+08:00", "low_below": 0.2, "high_from": 0.6,
                   "tag": "churn_band"}),
        );
        audience_matches(&e, "churn_band", &rows_of(&out["users"], "risk"));
        let users = out["users"].as_array().unwrap();
        assert_eq!(users.len(), 300);
        assert!(out["params"]["r"].as_f64().unwrap() > 0.0);
        let bands: Vec<&str> = users.iter().map(|u| u["risk"].as_str().unwrap()).collect();
        assert!(
            bands.contains(&"low") && bands.contains(&"high"),
            "{bands:?}"
        );
        for u in users {
            let p = u["p_alive"].as_f64().unwrap();
            let want = if 1.0 - p < 0.2 {
                "low"
            } else if 1.0 - p >= 0.6 {
                "high"
            } else {
                "mid"
            };
            assert_eq!(u["risk"], want);
        }
        // The supervised model on the same history: fitted at Nov 30 with December as the label
        // period, scoring everyone at Dec 31.
        let sup = call(
            &mut e,
            "churn_model",
            json!({"as_of": "2025-12-31T23:00:00+08:00", "window_days": 31, "holdout": 0.3,
                   "tag": "churn_model_band"}),
        );
        audience_matches(&e, "churn_model_band", &rows_of(&sup["users"], "risk"));
        let users = sup["users"].as_array().unwrap();
        assert_eq!(users.len(), 300);
        let coef = sup["model"]["model"]["coefficients"].as_array().unwrap();
        assert_eq!(coef.len(), 5);
        let u = &users[0];
        let logit: f64 = sup["model"]["model"]["intercept"].as_f64().unwrap()
            + u["contributions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .sum::<f64>();
        assert!((1.0 / (1.0 + (-logit).exp()) - u["score"].as_f64().unwrap()).abs() < 1e-12);
        // Recency drives churn in this story: its coefficient is positive.
        assert!(coef[0].as_f64().unwrap() > 0.0, "{coef:?}");
        // Nothing to fit is a typed error, not garbage.
        let mut empty = Engine::default();
        assert!(empty
            .call_json("churn_risk", r#"{"as_of": "2025-12-31T00:00:00Z"}"#)
            .is_err());
    }

    /// Every user holding `value` in `tag` is exactly the model's rows with that value, and
    /// users without a row hold no value.
    fn audience_matches(e: &Engine, tag: &str, rows: &[(u64, String)]) {
        let mut values: Vec<&String> = rows.iter().map(|r| &r.1).collect();
        values.sort();
        values.dedup();
        for v in &values {
            let mut want: Vec<u64> = rows.iter().filter(|r| &r.1 == *v).map(|r| r.0).collect();
            want.sort();
            want.dedup();
            let got: Vec<u64> = e
                .audience(&format!("{tag} = {v:?}"))
                .unwrap()
                .oneids
                .iter()
                .map(|o| o.0)
                .collect();
            assert_eq!(got, want, "{tag} = {v:?}");
        }
        let tagged = e.audience(&format!("EXISTS {tag}")).unwrap();
        let mut all: Vec<u64> = rows.iter().map(|r| r.0).collect();
        all.sort();
        all.dedup();
        assert_eq!(tagged.oneids.iter().map(|o| o.0).collect::<Vec<_>>(), all);
    }

    fn rows_of(v: &Value, key: &str) -> Vec<(u64, String)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["oneid"].as_u64().unwrap(),
                    r[key].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn model_answers_written_as_tags_audiences_select_them() {
        let mut e = Engine::default();
        let mut k = 0;
        for u in 0..40u32 {
            for j in 0..(1 + u % 5) {
                k += 1;
                let day = 1 + (u * 7 + j * 11) % 28;
                let month = 1 + (u + j) % 3;
                let cat = ["fruit", "wine", "tea"][((u + j) % 3) as usize];
                order(
                    &mut e,
                    &format!("o{k}"),
                    &format!("U{u}"),
                    &format!("2026-{month:02}-{day:02}T12:00:00+08:00"),
                    &format!("{}.00", 10 + (u * 13) % 90),
                    cat,
                    "app",
                );
            }
        }
        let as_of = "2026-03-31T23:00:00+08:00";
        // Read-only without `tag`; with it, the command writes and is journaled.
        let plain: crate::Command =
            crate::Command::from_call("rfm", &json!({"as_of": as_of}).to_string()).unwrap();
        assert!(!plain.mutates());
        let r = call(&mut e, "rfm", json!({"as_of": as_of, "tag": "rfm_segment"}));
        let rows = rows_of(&r, "segment");
        assert!(
            rows.iter()
                .map(|r| &r.1)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                >= 3
        );
        audience_matches(&e, "rfm_segment", &rows);
        // An earlier as-of: fewer users have orders; the others lose their segment.
        let r = call(
            &mut e,
            "rfm",
            json!({"as_of": "2026-01-15T00:00:00+08:00", "tag": "rfm_segment"}),
        );
        let early = rows_of(&r, "segment");
        assert!(early.len() < rows.len());
        audience_matches(&e, "rfm_segment", &early);

        let a = call(
            &mut e,
            "activity_scores",
            json!({"as_of": as_of, "half_life_days": 30, "levels": [["high", 2.0], ["medium", 0.8]],
                   "tag": "activity_level"}),
        );
        audience_matches(&e, "activity_level", &rows_of(&a, "level"));

        let p = call(
            &mut e,
            "preference_shares",
            json!({"as_of": as_of, "dimension": "category", "top_k": 2, "tag": "top_category"}),
        );
        let prefs = rows_of(&p, "value");
        assert!(prefs
            .iter()
            .any(|r| prefs.iter().filter(|x| x.0 == r.0).count() == 2));
        audience_matches(&e, "top_category", &prefs);

        // A rule over model tags follows them.
        e.call_json(
            "define_tag",
            &json!({"name": "save_me", "rule": "activity_level = \"high\" AND top_category EXISTS", "now": as_of}).to_string(),
        )
        .unwrap_err(); // `x EXISTS` is not the syntax: a typed error, nothing defined
        e.call_json(
            "define_tag",
            &json!({"name": "save_me", "rule": "activity_level = \"high\" OR top_category = \"wine\"", "now": as_of}).to_string(),
        )
        .unwrap();
        let both = e
            .audience(r#"activity_level = "high" OR top_category = "wine""#)
            .unwrap();
        assert_eq!(e.audience("save_me").unwrap().oneids, both.oneids);
        // A tag name that is a keyword or an attribute is refused, nothing written.
        assert!(e
            .call_json("rfm", &json!({"as_of": as_of, "tag": "AND"}).to_string())
            .is_err());
        assert!(e
            .call_json("rfm", &json!({"as_of": as_of, "tag": "orders"}).to_string())
            .is_err());
    }

    #[test]
    fn location_by_activity_cross_table() {
        let mut e = Engine::default();
        let src = json!({"platform": "app", "program": "brand-a"});
        let ord = |e: &mut Engine, key: &str, user: &str, time: &str, region: &str| {
            ingest(
                e,
                json!({"kind": "order", "key": key, "time": time, "source": src,
                    "user": {"kind": "member_no", "value": user}, "order_id": key,
                    "amount": "10.00", "region": region}),
            )
        };
        let act = |e: &mut Engine, key: &str, user: &str, time: &str, kind: &str| {
            ingest(
                e,
                json!({"kind": "activity", "key": key, "time": time, "source": src,
                    "user": {"kind": "member_no", "value": user}, "type": kind}),
            )
        };
        ord(&mut e, "o1", "A", "2026-01-05T10:00:00+08:00", "bj");
        ord(&mut e, "o2", "A", "2026-03-05T10:00:00+08:00", "sh"); // A moved: latest is sh
        ord(&mut e, "o3", "B", "2026-02-05T10:00:00+08:00", "bj");
        ord(&mut e, "o4", "B", "2026-04-05T10:00:00+08:00", "gz"); // after as_of: not used
        act(&mut e, "a1", "A", "2026-03-10T10:00:00+08:00", "login");
        act(&mut e, "a2", "A", "2026-03-11T10:00:00+08:00", "login");
        act(&mut e, "a3", "B", "2026-03-12T10:00:00+08:00", "login");
        act(&mut e, "a4", "B", "2026-03-13T10:00:00+08:00", "checkin");
        act(&mut e, "a5", "C", "2026-03-14T10:00:00+08:00", "login");
        act(&mut e, "a6", "C", "2025-10-14T10:00:00+08:00", "login"); // outside 3 months
        let as_of = "2026-03-31T23:00:00+08:00";
        let x = call(
            &mut e,
            "cross_table",
            json!({"as_of": as_of, "rows": "region", "cols": "activity_type"}),
        );
        assert_eq!(
            x,
            json!([
                {"row": "(unknown)", "col": "login", "amount": 1.0},
                {"row": "bj", "col": "checkin", "amount": 1.0},
                {"row": "bj", "col": "login", "amount": 1.0},
                {"row": "sh", "col": "login", "amount": 2.0}])
        );
        let t = call(
            &mut e,
            "cross_table",
            json!({"as_of": as_of, "rows": "activity_type", "cols": "region"}),
        );
        assert_eq!(t.as_array().unwrap().len(), 4);
        assert_eq!(t[0], json!({"row": "checkin", "col": "bj", "amount": 1.0}));
        assert!(e
            .call_json(
                "cross_table",
                &json!({"as_of": as_of, "rows": "category", "cols": "activity_type"}).to_string()
            )
            .is_err());
    }
}
