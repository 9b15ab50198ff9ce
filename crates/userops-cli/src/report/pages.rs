//! From [`Results`] to the report's summary and sections. Every number drawn here comes from
//! `Results`, which the engine computed; nothing is typed in.

use userops::lifecycle::{Group, Stage};

use super::collect::{Counts, Results, FUNNEL, OUTCOMES};
use super::{svg, table, Report, Section};

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{:.1}%", v * 100.0))
}

fn group_name(g: Group) -> &'static str {
    match g {
        Group::OldActive => "old actives retained",
        Group::New => "last month's new retained",
        Group::Dormant => "dormant woken",
        Group::Churned => "churned returned",
        _ => "other",
    }
}

/// The key figures, as (label, value) rows: printed by the demo and the report's top table.
pub fn summary(r: &Results) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut add = |k: &str, v: String| rows.push((k.to_owned(), v));
    add("events ingested", r.stats.events.to_string());
    add("identifiers", r.stats.identifiers.to_string());
    add("persons (OneIDs)", r.stats.persons.to_string());
    let conflicts: u64 = r.conflicts.values().sum();
    add(
        "OneID conflicts",
        if r.conflicts.is_empty() {
            "0".into()
        } else {
            format!("{conflicts} ({})", counts(&r.conflicts))
        },
    );
    for (t, n) in &r.tags {
        add(&format!("tag {t}"), format!("{n} users"));
    }
    for (a, n) in &r.audiences {
        add(&format!("audience {a}"), format!("{n} members"));
    }
    if let Some(last) = r.lifecycle.periods.last() {
        add(
            &format!("active rate {}", last.period),
            format!(
                "{} ({} of {} registered)",
                pct(last.active_rate),
                last.actives,
                last.registered
            ),
        );
        if let Some(d) = &last.decomposition {
            add(
                &format!("actives {} decomposed", last.period),
                format!(
                    "{} new + {}",
                    d.new,
                    d.terms
                        .iter()
                        .map(|t| format!(
                            "{} of {} {} ({})",
                            t.retained,
                            t.size,
                            group_name(t.group),
                            pct(t.rate)
                        ))
                        .collect::<Vec<_>>()
                        .join(" + ")
                ),
            );
        }
    }
    add("RFM segments", counts(&r.rfm));
    add(
        "churn risk (BG/NBD)",
        match &r.bgnbd.error {
            Some(e) => format!("fit failed: {e}"),
            None => {
                let p = &r.bgnbd.params;
                let num = |k: &str| p[k].as_f64().map_or("?".to_owned(), |v| format!("{v:.3}"));
                format!(
                    "{} ({} fit: r {}, alpha {}, a {}, b {})",
                    counts(&r.bgnbd.bands),
                    r.bgnbd.freq,
                    num("r"),
                    num("alpha"),
                    num("a"),
                    num("b"),
                )
            }
        },
    );
    add(
        "churn risk (logistic, 60-day label)",
        format!(
            "{} (holdout AUC {})",
            counts(&r.logistic.bands),
            r.logistic.auc.map_or("–".into(), |a| format!("{a:.3}"))
        ),
    );
    if let Some((cat, n)) = r.top_category.iter().max_by_key(|(_, n)| **n) {
        add(
            "most common top category",
            format!(
                "{cat} ({n} buyers of {})",
                r.top_category.values().sum::<u64>()
            ),
        );
    }
    if !r.tiers.is_empty() {
        add("members per tier", counts(&r.tiers));
        add("points outstanding", r.points_outstanding.to_string());
    }
    add("automation plan (touches per channel)", counts(&r.planned));
    for p in &r.promotions {
        add(
            &format!("promotion {}", p["id"].as_str().unwrap_or("?")),
            format!(
                "{} orders, {} discounted",
                p["orders"].as_u64().unwrap_or(0),
                p["money"].as_str().unwrap_or("0")
            ),
        );
    }
    rows
}

/// The report page.
pub fn build(r: &Results, title: String) -> Report {
    let mut sections = Vec::new();
    lifecycle_sections(r, &mut sections);
    customer_sections(r, &mut sections);
    churn_sections(r, &mut sections);
    marketing_sections(r, &mut sections);
    operations_sections(r, &mut sections);

    Report {
        title,
        summary: summary(r),
        sections,
    }
}

/// Active rate, its decomposition, stages and transitions by month.
fn lifecycle_sections(r: &Results, sections: &mut Vec<Section>) {
    let periods = &r.lifecycle.periods;
    let months: Vec<String> = periods.iter().map(|p| p.period.clone()).collect();

    if !periods.is_empty() {
        sections.push(Section {
            title: "Active rate by month".into(),
            note: format!(
                "Active users / registered users per month (business time), churn after {} quiet months.",
                r.lifecycle.churn_after
            ),
            body: svg::line_chart(
                "Active rate by month",
                &months,
                &[svg::Series {
                    name: "active rate",
                    values: periods.iter().map(|p| p.active_rate.unwrap_or(0.0)).collect(),
                }],
                true,
            ),
        });
        let decomposed: Vec<_> = periods
            .iter()
            .filter_map(|p| p.decomposition.as_ref().map(|d| (p.period.clone(), d)))
            .collect();
        let dmonths: Vec<String> = decomposed.iter().map(|(m, _)| m.clone()).collect();
        let mut series = vec![svg::Series {
            name: "new this month",
            values: decomposed.iter().map(|(_, d)| d.new as f64).collect(),
        }];
        for g in Group::ALL {
            series.push(svg::Series {
                name: group_name(g),
                values: decomposed
                    .iter()
                    .map(|(_, d)| d.term(g).map_or(0.0, |t| t.retained as f64))
                    .collect(),
            });
        }
        sections.push(Section {
            title: "Active users decomposed".into(),
            note: "actives(m) = new(m) + Σ size(group, m−1) × rate(group): each bar is one month's actives, split by the group of the previous month they came from (exact, in whole users).".into(),
            body: svg::stacked_bars("Active users decomposed by month", &dmonths, &series, false),
        });
        let rows: Vec<Vec<String>> = decomposed
            .iter()
            .map(|(m, d)| {
                let mut row = vec![m.clone(), d.actives.to_string(), d.new.to_string()];
                for g in Group::ALL {
                    row.push(d.term(g).map_or("–".into(), |t| pct(t.rate)));
                }
                row
            })
            .collect();
        sections.push(Section {
            title: "Decomposition rates".into(),
            note: "The rates of the decomposition: old-user retention, new-user retention, wake rate (dormant → active) and return rate (churned → active).".into(),
            body: table(
                &[
                    "month",
                    "actives",
                    "new",
                    "old retention",
                    "new retention",
                    "wake rate",
                    "return rate",
                ],
                &rows,
            ),
        });
        let stage_series: Vec<svg::Series<'_>> = Stage::ALL
            .iter()
            .map(|s| svg::Series {
                name: s.name(),
                values: periods.iter().map(|p| p.count(*s) as f64).collect(),
            })
            .collect();
        sections.push(Section {
            title: "Lifecycle stages by month".into(),
            note: "Registered users per stage at the end of each month.".into(),
            body: svg::stacked_bars("Lifecycle stages by month", &months, &stage_series, false),
        });
        if let Some(last) = periods.last() {
            let mut from: Vec<String> = vec!["not registered".into()];
            from.extend(Stage::ALL.iter().map(|s| s.name().to_owned()));
            let to: Vec<String> = Stage::ALL.iter().map(|s| s.name().to_owned()).collect();
            let mut counts = vec![vec![0u64; to.len()]; from.len()];
            for t in &last.transitions {
                let i = t
                    .from
                    .and_then(|f| Stage::ALL.iter().position(|s| *s == f))
                    .map_or(0, |i| i + 1);
                if let Some(j) = Stage::ALL.iter().position(|s| *s == t.to) {
                    counts[i][j] += t.users;
                }
            }
            let keep: Vec<usize> = (0..from.len())
                .filter(|&i| counts[i].iter().sum::<u64>() > 0)
                .collect();
            let cells: Vec<Vec<Option<f64>>> = keep
                .iter()
                .map(|&i| {
                    let total = counts[i].iter().sum::<u64>() as f64;
                    counts[i].iter().map(|&c| Some(c as f64 / total)).collect()
                })
                .collect();
            let rows: Vec<String> = keep.iter().map(|&i| from[i].clone()).collect();
            let cols: Vec<String> = to
                .iter()
                .map(|s| s.chars().take(8).collect::<String>())
                .collect();
            sections.push(Section {
                title: format!("Stage transitions into {}", last.period),
                note: "Row: stage in the previous month; column: stage this month; cell: share of the row's users.".into(),
                body: svg::heatmap(
                    &format!("Stage transitions into {}", last.period),
                    &rows,
                    &cols,
                    &cells,
                ),
            });
        }
    }
}

/// Cohort retention, the funnel and RFM.
fn customer_sections(r: &Results, sections: &mut Vec<Section>) {
    if !r.cohorts.cohorts.is_empty() {
        let rows: Vec<String> = r
            .cohorts
            .cohorts
            .iter()
            .map(|c| format!("{} ({})", c.cohort, c.users))
            .collect();
        let width = r
            .cohorts
            .cohorts
            .iter()
            .map(|c| c.rates.len())
            .max()
            .unwrap_or(0);
        let cols: Vec<String> = (0..width).map(|k| format!("+{k}")).collect();
        let cells: Vec<Vec<Option<f64>>> = r
            .cohorts
            .cohorts
            .iter()
            .map(|c| c.rates.iter().map(|v| Some(*v)).collect())
            .collect();
        sections.push(Section {
            title: "Cohort retention".into(),
            note: "Users by month of first activity (row), share active k months later (column)."
                .into(),
            body: svg::heatmap("Cohort retention", &rows, &cols, &cells),
        });
    }

    if !r.funnel.steps.is_empty() {
        let labels: Vec<String> = r
            .funnel
            .steps
            .iter()
            .map(|s| format!("{} ({})", s.step, pct(s.from_first)))
            .collect();
        let values: Vec<f64> = r.funnel.steps.iter().map(|s| s.users as f64).collect();
        sections.push(Section {
            title: "Funnel".into(),
            note: format!(
                "Users reaching each step in order within 30 days of the first ({}); share of the first step in brackets.",
                FUNNEL.join(" → ")
            ),
            body: svg::hbars("Funnel", &labels, &values, false),
        });
    }

    if !r.rfm.is_empty() {
        let labels: Vec<String> = r.rfm.keys().cloned().collect();
        let values: Vec<f64> = r.rfm.values().map(|v| *v as f64).collect();
        sections.push(Section {
            title: "RFM segments".into(),
            note: "Buyers per RFM segment (scores split at the mean), as of the end of the year."
                .into(),
            body: svg::hbars("RFM segment sizes", &labels, &values, false),
        });
    }
}

/// The churn models' risk distribution and bands.
fn churn_sections(r: &Results, sections: &mut Vec<Section>) {
    let bg_total: u64 = r.bgnbd.deciles.iter().sum();
    let lr_total: u64 = r.logistic.deciles.iter().sum();
    if bg_total + lr_total > 0 {
        let labels: Vec<String> = (0..10)
            .map(|i| format!("{:.1}–{:.1}", i as f64 / 10.0, (i + 1) as f64 / 10.0))
            .collect();
        let share = |d: &[u64; 10], n: u64| -> Vec<f64> {
            d.iter().map(|v| *v as f64 / n.max(1) as f64).collect()
        };
        let mut series = Vec::new();
        if bg_total > 0 {
            series.push(svg::Series {
                name: "BG/NBD 1 − P(alive)",
                values: share(&r.bgnbd.deciles, bg_total),
            });
        }
        if lr_total > 0 {
            series.push(svg::Series {
                name: "logistic P(churn)",
                values: share(&r.logistic.deciles, lr_total),
            });
        }
        let bg = match &r.bgnbd.error {
            Some(e) => format!("the BG/NBD fit failed ({e})"),
            None => format!(
                "BG/NBD fitted on {} repeat purchases of {bg_total} buyers (r {}, α {}, a {}, b {})",
                r.bgnbd.freq,
                fmt_param(&r.bgnbd.params["r"]),
                fmt_param(&r.bgnbd.params["alpha"]),
                fmt_param(&r.bgnbd.params["a"]),
                fmt_param(&r.bgnbd.params["b"]),
            ),
        };
        sections.push(Section {
            title: "Churn risk distribution".into(),
            note: format!(
                "Share of users per decile of churn probability: {bg}; logistic churn model on recency, frequency, tenure, trend and activity of {lr_total} users."
            ),
            body: svg::line_chart("Churn risk distribution", &labels, &series, true),
        });
        let models = vec!["BG/NBD".to_owned(), "logistic".to_owned()];
        let bands = ["low", "mid", "high"];
        let series: Vec<svg::Series<'_>> = bands
            .iter()
            .map(|b| svg::Series {
                name: b,
                values: vec![
                    r.bgnbd.bands.get(*b).copied().unwrap_or(0) as f64,
                    r.logistic.bands.get(*b).copied().unwrap_or(0) as f64,
                ],
            })
            .collect();
        sections.push(Section {
            title: "Churn risk bands".into(),
            note: format!(
                "Users per risk band (churn probability < 0.3 low, ≥ 0.7 high) by the BG/NBD model and by the logistic churn model (fitted on {} users, holdout AUC {}).",
                r.logistic.n_train,
                r.logistic.auc.map_or("–".into(), |a| format!("{a:.3}"))
            ),
            body: svg::stacked_bars("Churn risk bands by model", &models, &series, false),
        });
    }
}

/// Channel effectiveness and attributed revenue.
fn marketing_sections(r: &Results, sections: &mut Vec<Section>) {
    if !r.touches.is_empty() {
        let channels: Vec<&String> = r.touches.keys().collect();
        let x: Vec<String> = OUTCOMES.iter().map(|s| (*s).to_owned()).collect();
        let series: Vec<svg::Series<'_>> = channels
            .iter()
            .map(|c| {
                let counts = r.touches[*c];
                let sent = counts[0].max(1) as f64;
                svg::Series {
                    name: c.as_str(),
                    values: counts.iter().map(|v| *v as f64 / sent).collect(),
                }
            })
            .collect();
        sections.push(Section {
            title: "Channel effectiveness".into(),
            note: "Recorded touch outcomes per channel, as a share of touches sent.".into(),
            body: svg::line_chart(
                "Channel effectiveness: outcomes per touch sent",
                &x,
                &series,
                true,
            ),
        });
        let rows: Vec<Vec<String>> = channels
            .iter()
            .map(|c| {
                let t = r.touches[*c];
                let (conv, value) = r.attribution.get(*c).copied().unwrap_or((0.0, 0.0));
                let mut row = vec![(*c).clone()];
                row.extend(t.iter().map(|v| v.to_string()));
                row.push(pct(Some(t[4] as f64 / t[0].max(1) as f64)));
                row.push(format!("{conv:.1}"));
                row.push(format!("{value:.2}"));
                row
            })
            .collect();
        let mut header = vec!["channel"];
        header.extend(OUTCOMES);
        header.extend(["converted / sent", "orders credited", "revenue credited"]);
        sections.push(Section {
            title: "Channel effectiveness table".into(),
            note: "Touch outcome counts, and orders within 30 days of a delivered, opened or clicked touch credited to channels linearly.".into(),
            body: table(&header, &rows),
        });
    }
    if !r.attribution.is_empty() {
        let labels: Vec<String> = r.attribution.keys().cloned().collect();
        let values: Vec<f64> = r.attribution.values().map(|(_, v)| *v).collect();
        sections.push(Section {
            title: "Attributed revenue".into(),
            note: "Order value credited to touch channels (linear multi-touch attribution, 30-day lookback).".into(),
            body: svg::hbars("Attributed revenue by channel", &labels, &values, false),
        });
    }
}

/// Preferences (top categories), tiers, the automation plan, promotions and intake.
fn operations_sections(r: &Results, sections: &mut Vec<Section>) {
    if !r.top_category.is_empty() {
        let labels: Vec<String> = r.top_category.keys().cloned().collect();
        let values: Vec<f64> = r.top_category.values().map(|v| *v as f64).collect();
        sections.push(Section {
            title: "Preferences".into(),
            note:
                "Buyers by their top category (share of order-line spend over the last 12 months)."
                    .into(),
            body: svg::hbars("Top category preference", &labels, &values, false),
        });
    }

    if !r.tiers.is_empty() {
        let labels: Vec<String> = r.tiers.keys().cloned().collect();
        let values: Vec<f64> = r.tiers.values().map(|v| *v as f64).collect();
        sections.push(Section {
            title: "Tiers".into(),
            note: format!(
                "Persons per tier of the group program (calendar-year spend: silver ≥ 500, gold ≥ 2000, platinum ≥ 6000) after the year-end evaluation; {} points outstanding.",
                r.points_outstanding
            ),
            body: svg::hbars("Members per tier", &labels, &values, false),
        });
    }

    if !r.planned.is_empty() {
        let labels: Vec<String> = r.planned.keys().cloned().collect();
        let values: Vec<f64> = r.planned.values().map(|v| *v as f64).collect();
        sections.push(Section {
            title: "Automation plan".into(),
            note: "Touches planned by the automation run, per channel (after consent, quiet hours and frequency caps).".into(),
            body: svg::hbars("Automation plan by channel", &labels, &values, false),
        });
    }

    if !r.promotions.is_empty() {
        let rows: Vec<Vec<String>> = r
            .promotions
            .iter()
            .map(|p| {
                vec![
                    p["id"].as_str().unwrap_or("?").to_owned(),
                    p["orders"].as_u64().unwrap_or(0).to_string(),
                    p["money"].as_str().unwrap_or("0").to_owned(),
                    p["budget_left"].as_str().unwrap_or("unbounded").to_owned(),
                ]
            })
            .collect();
        sections.push(Section {
            title: "Promotions".into(),
            note: "Usage of each promotion after the committed sample order.".into(),
            body: table(
                &["promotion", "orders", "discount given", "budget left"],
                &rows,
            ),
        });
    }

    if !r.intake.is_empty() {
        let mut months: Vec<String> = r.intake.values().flat_map(|m| m.keys().cloned()).collect();
        months.sort();
        months.dedup();
        let series: Vec<svg::Series<'_>> = r
            .intake
            .iter()
            .map(|(kind, by_month)| svg::Series {
                name: kind,
                values: months
                    .iter()
                    .map(|m| by_month.get(m).copied().unwrap_or(0) as f64)
                    .collect(),
            })
            .collect();
        sections.push(Section {
            title: "Intake per month".into(),
            note: "Events on the persons' timelines per calendar month (UTC) and kind: the seasonal peaks are Spring Festival (Jan/Feb), May Day and National Day (Oct).".into(),
            body: svg::stacked_bars("Events per month by kind", &months, &series, false),
        });
    }
}

fn fmt_param(v: &serde_json::Value) -> String {
    v.as_f64().map_or("–".into(), |x| format!("{x:.3}"))
}

/// `key count, key count, ...` in key order.
fn counts(c: &Counts) -> String {
    c.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
