//! A seeded synthetic data set for a retail group: users appearing on taobao, jd, the own app,
//! store POS and WeChat with overlapping phones, emails, devices and openids (with junk shared
//! devices, shared family phones and mistyped values), registering, coming back month after month
//! with seasonal peaks (Spring Festival, May Day, National Day), ordering across categories and
//! price bands, refunding, chatting in brand communities, receiving touches and coupons.
//!
//! Every user draws from their own random stream (seeded by the seed and the user number), so the
//! data is deterministic, independent of how many users are generated, and can be written user by
//! user without holding the whole set in memory.

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, Exp1, Gamma};
use userops::event::{CommunityAction, CouponAction, OrderLine, TouchOutcome};
use userops::{Decimal, Event, EventBody, IdKind, Identifier, Source, UserRef};

/// The org tree: group → brands → dealers → stores.
pub const BRANDS: [&str; 2] = ["brand-a", "brand-b"];
const STORES: [&str; 6] = [
    "store-a1-01",
    "store-a1-02",
    "store-a2-01",
    "store-b1-01",
    "store-b1-02",
    "store-b2-01",
];
/// Platforms a user may appear on, with the share of users seen there.
const PLATFORMS: [(&str, f64); 5] = [
    ("taobao", 0.45),
    ("jd", 0.35),
    ("app", 1.0),
    ("pos", 0.30),
    ("wechat", 0.50),
];
/// Category, base unit price (yuan), share of lines.
const CATEGORIES: [(&str, i64, u32); 7] = [
    ("fruit", 30, 25),
    ("dairy", 45, 20),
    ("snacks", 20, 20),
    ("household", 80, 15),
    ("beauty", 260, 10),
    ("apparel", 180, 7),
    ("appliance", 1999, 3),
];
const REGIONS: [&str; 5] = ["shanghai", "beijing", "guangzhou", "chengdu", "hangzhou"];
const ACTIVITY_TYPES: [&str; 4] = ["app_open", "login", "browse", "search"];
const CHANNELS: [&str; 4] = ["push", "sms", "wechat", "community"];
/// Month weights (Jan..Dec): Spring Festival (17 Feb 2026), May Day and National Day peaks.
const SEASON: [f64; 12] = [
    1.15, 1.35, 0.9, 0.95, 1.3, 1.0, 0.9, 0.9, 1.0, 1.35, 1.15, 1.1,
];
/// A store tablet many customers sign in on: junk for identity resolution.
pub const JUNK_DEVICE: &str = "tablet-store-a1-01";

/// The first day of the generated year.
pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date")
}

fn month_start(month0: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, month0 + 1, 1, 0, 0, 0)
        .single()
        .expect("valid date")
}

fn id(kind: IdKind, value: &str) -> Identifier {
    Identifier::new(kind, value).expect("generator writes valid identifiers")
}

/// The phone of user `u` (unique, valid Chinese mobile numbers).
pub fn phone_of(u: u32) -> String {
    format!("1{:010}", 3_000_000_000u64 + u64::from(u) * 7)
}

/// The member number of user `u`.
pub fn member_of(u: u32) -> String {
    format!("M{u:08}")
}

/// Who a user is, for the generator's steps: fixed once the user's registration is drawn.
#[derive(Clone, Copy)]
struct Who<'a> {
    u: u32,
    brand: &'a str,
    home_store: &'a str,
    region: &'a str,
    member: &'a Identifier,
    user: &'a UserRef,
    reg_time: DateTime<Utc>,
}

/// A user's order process: a Poisson process at its own rate that stops for good after an
/// order with its own chance.
#[derive(Clone, Copy)]
struct OrderProcess {
    /// Orders so far (numbers the order ids).
    order_no: u32,
    /// Orders per day while buying.
    order_rate: f64,
    /// The chance to stop after each order.
    stop_after_order: f64,
    /// Still buying.
    buying: bool,
}

/// All events of user `u`, in time order.
pub fn user_events(seed: u64, u: u32) -> Vec<Event> {
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed ^ u64::from(u).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let brand = BRANDS[(u as usize) % BRANDS.len()];
    let home_store = STORES[(u as usize) % STORES.len()];
    let region = REGIONS[rng.random_range(0..REGIONS.len())];
    let member = id(IdKind::MemberNo, &member_of(u));
    let user = UserRef::Id(member.clone());
    // 1% of users share their phone with the previous user (a family phone: a cap conflict).
    let phone = if u > 0 && rng.random_bool(0.01) {
        phone_of(u - 1)
    } else {
        phone_of(u)
    };
    let reg_time = start()
        + Duration::days(rng.random_range(0..330))
        + Duration::minutes(rng.random_range(0..1440));
    let mut out = Vec::with_capacity(40);
    let mut n = 0u32;
    let mut push = |out: &mut Vec<Event>,
                    time: DateTime<Utc>,
                    platform: &str,
                    program: &str,
                    body: EventBody| {
        n += 1;
        out.push(Event {
            key: format!("u{u}-{n}"),
            time,
            source: Source {
                platform: platform.to_owned(),
                program: program.to_owned(),
            },
            body,
        });
    };

    let who = Who {
        u,
        brand,
        home_store,
        region,
        member: &member,
        user: &user,
        reg_time,
    };
    identities(&who, &phone, &mut rng, &mut out, &mut push);
    push(
        &mut out,
        reg_time,
        "app",
        brand,
        EventBody::Register { user: user.clone() },
    );

    // Community membership (WeChat groups of the brand).
    let community = format!("community-{brand}");
    let in_community = rng.random_bool(0.3);
    if in_community {
        let t = reg_time + Duration::days(rng.random_range(1..30));
        push(
            &mut out,
            t,
            "wechat",
            brand,
            EventBody::Community {
                user: user.clone(),
                community: community.clone(),
                action: CommunityAction::Join,
                reply_to: None,
            },
        );
    }

    // Month by month: activity with a propensity that drifts down (some users churn, a few
    // come back), orders on active days, community messages, touches and coupons.
    let mut propensity: f64 = rng.random_range(0.35..0.95);
    // Some users leave for good (a dropout after which nothing brings them back, as BG/NBD
    // assumes); the others drift and may be won back.
    // Each user's monthly dropout probability differs (heavy at a few, near zero for most).
    let mut gone = false;
    let dropout = 0.35 * rng.random_range(0.0f64..1.0).powi(2);
    let first_month = reg_time.month0();
    let order_no = 0u32;
    // Orders per day while buying (gamma, mean 0.04), and the chance to stop after each order
    // (beta, mean 0.24, close to the a = 0.79, b = 2.43 of the BG/NBD paper's CDNOW fit).
    let order_rate: f64 = Gamma::new(0.8f64, 1.0 / 20.0)
        .expect("valid gamma")
        .sample(&mut rng)
        .max(1e-9);
    let stop_after_order = Beta::new(0.8, 2.5).expect("valid beta").sample(&mut rng);
    let buying = true;
    let mut orders = OrderProcess {
        order_no,
        order_rate,
        stop_after_order,
        buying,
    };
    for m in first_month..12 {
        let season = SEASON[m as usize];
        if rng.random_bool(0.05) {
            propensity = (propensity + 0.4).min(0.95); // a win-back
        }
        let active = rng.random_bool((propensity * season).clamp(0.0, 1.0)) && !gone;
        if active {
            active_month(
                &who,
                m,
                in_community,
                &community,
                &mut rng,
                &mut out,
                &mut push,
            );
        }
        month_orders(
            &who,
            m,
            &mut orders,
            gone,
            season,
            &mut rng,
            &mut out,
            &mut push,
        );
        monthly_touch(&who, m, &mut rng, &mut out, &mut push);
        monthly_coupon(&who, m, &mut rng, &mut out, &mut push);
        propensity *= rng.random_range(0.82..1.02);
        gone = gone || rng.random_bool(dropout);
    }
    out.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.key.cmp(&b.key)));
    out
}

/// Identity records: one per platform the user is seen on.
fn identities(
    who: &Who<'_>,
    phone: &str,
    rng: &mut ChaCha8Rng,
    out: &mut Vec<Event>,
    push: &mut impl FnMut(&mut Vec<Event>, DateTime<Utc>, &str, &str, EventBody),
) {
    let Who {
        u,
        brand,
        home_store,
        member,
        reg_time,
        ..
    } = *who;
    for (platform, share) in PLATFORMS {
        if !rng.random_bool(share) {
            continue;
        }
        let mut ids = Vec::new();
        let program = if platform == "pos" { home_store } else { brand };
        match platform {
            "taobao" | "jd" => {
                ids.push(id(IdKind::PlatformUserId, &format!("{platform}_{u}")));
                if rng.random_bool(0.8) {
                    ids.push(id(IdKind::Phone, phone));
                }
            }
            "app" => {
                ids.push(member.clone());
                ids.push(id(IdKind::Phone, phone));
                ids.push(id(IdKind::DeviceId, &format!("dev-{u}")));
                if rng.random_bool(0.3) {
                    ids.push(id(IdKind::DeviceId, &format!("dev-{u}-tablet")));
                }
            }
            "wechat" => {
                ids.push(id(IdKind::OpenId, &format!("o_{brand}_{u}")));
                ids.push(id(IdKind::UnionId, &format!("un_{u}")));
                if rng.random_bool(0.6) {
                    ids.push(member.clone());
                }
            }
            _ => {
                ids.push(member.clone());
                if rng.random_bool(0.5) {
                    ids.push(id(IdKind::Email, &format!("user{u}@example.com")));
                }
                if rng.random_bool(0.05) {
                    ids.push(id(IdKind::DeviceId, JUNK_DEVICE));
                }
            }
        }
        let t = reg_time + Duration::minutes(rng.random_range(0..60 * 24 * 20));
        push(out, t, platform, program, EventBody::Identify { ids });
    }
}

/// An active month: activity days with their behaviours, and community messages.
fn active_month(
    who: &Who<'_>,
    m: u32,
    in_community: bool,
    community: &str,
    rng: &mut ChaCha8Rng,
    out: &mut Vec<Event>,
    push: &mut impl FnMut(&mut Vec<Event>, DateTime<Utc>, &str, &str, EventBody),
) {
    let Who {
        u,
        brand,
        user,
        reg_time,
        ..
    } = *who;
    let days = rng.random_range(1..=6);
    for _ in 0..days {
        let t = (month_start(m) + Duration::minutes(rng.random_range(0..60 * 24 * 28)))
            .max(reg_time + Duration::minutes(1));
        let activity = ACTIVITY_TYPES[rng.random_range(0..ACTIVITY_TYPES.len())];
        push(
            out,
            t,
            "app",
            brand,
            EventBody::Activity {
                user: user.clone(),
                activity: activity.into(),
            },
        );
        if rng.random_bool(0.3) {
            let behavior = ["sign_in", "review", "share"][rng.random_range(0..3)];
            push(
                out,
                t + Duration::minutes(2),
                "app",
                brand,
                EventBody::Behavior {
                    user: user.clone(),
                    behavior: behavior.into(),
                    category: String::new(),
                    channel: "app".into(),
                },
            );
        }
    }
    if in_community && rng.random_bool(0.5) {
        for _ in 0..rng.random_range(1..5) {
            let reply_to = (u > 2 && rng.random_bool(0.4)).then(|| {
                UserRef::Id(id(
                    IdKind::MemberNo,
                    &member_of(u - rng.random_range(1..u.min(20))),
                ))
            });
            push(
                out,
                month_start(m) + Duration::minutes(rng.random_range(0..60 * 24 * 28)),
                "wechat",
                brand,
                EventBody::Community {
                    user: user.clone(),
                    community: community.to_owned(),
                    action: CommunityAction::Message,
                    reply_to,
                },
            );
        }
    }
}

/// Orders: a Poisson process at the user's own rate (in the first 28 days of each month,
/// like every other event here), thinned by the season; after each order the user may
/// never buy again. Rates vary between users as a gamma and the chance to stop as a
/// beta: the story BG/NBD tells, so that its fit on this data has an interior maximum
/// (orders drawn on active days only, as before, left it none). Leaving the app stops
/// the orders too.
#[allow(
    clippy::too_many_arguments,
    reason = "the state of one user's order process"
)]
fn month_orders(
    who: &Who<'_>,
    m: u32,
    orders: &mut OrderProcess,
    gone: bool,
    season: f64,
    rng: &mut ChaCha8Rng,
    out: &mut Vec<Event>,
    push: &mut impl FnMut(&mut Vec<Event>, DateTime<Utc>, &str, &str, EventBody),
) {
    let Who {
        u,
        brand,
        home_store,
        region,
        user,
        reg_time,
        ..
    } = *who;
    let OrderProcess {
        mut order_no,
        order_rate,
        stop_after_order,
        mut buying,
    } = *orders;
    let mut t = month_start(m).max(reg_time + Duration::minutes(1));
    let month_end = month_start(m) + Duration::days(28);
    while buying && !gone {
        let gap_days: f64 = rng.sample::<f64, _>(Exp1) / order_rate;
        t += Duration::seconds((gap_days * 86_400.0).min(1e9) as i64);
        if t >= month_end {
            break;
        }
        if !rng.random_bool(season / 1.35) {
            continue;
        }
        order_no += 1;
        let (platform, store) = match rng.random_range(0..10) {
            0..=3 => ("app", String::new()),
            4..=5 => ("taobao", String::new()),
            6 => ("jd", String::new()),
            7 => ("wechat", String::new()),
            _ => ("pos", home_store.to_owned()),
        };
        let lines: Vec<OrderLine> = (0..rng.random_range(1..=3))
            .map(|_| {
                let total: u32 = CATEGORIES.iter().map(|c| c.2).sum();
                let mut pick = rng.random_range(0..total);
                let (category, base, _) = *CATEGORIES
                    .iter()
                    .find(|c| {
                        if pick < c.2 {
                            true
                        } else {
                            pick -= c.2;
                            false
                        }
                    })
                    .expect("pick < total");
                let cents = base * 100 * rng.random_range(60..=160) / 100;
                OrderLine {
                    sku: format!("{category}-{:02}", rng.random_range(0..20)),
                    category: category.into(),
                    price: Decimal::new(cents, 2),
                    qty: rng.random_range(1..=3),
                }
            })
            .collect();
        let amount: Decimal = lines.iter().map(|l| l.price * Decimal::from(l.qty)).sum();
        let order_id = format!("o-{u}-{order_no}");
        let program = if platform == "pos" { home_store } else { brand };
        push(
            out,
            t + Duration::minutes(7),
            platform,
            program,
            EventBody::Order {
                user: user.clone(),
                order_id: order_id.clone(),
                amount,
                channel: platform.into(),
                region: region.into(),
                store,
                lines,
            },
        );
        if rng.random_bool(0.04) {
            push(
                out,
                t + Duration::days(rng.random_range(1..7)),
                platform,
                program,
                EventBody::Refund {
                    user: user.clone(),
                    order_id,
                    amount,
                    lines: Vec::new(),
                },
            );
        }
        buying = !rng.random_bool(stop_after_order);
    }
    *orders = OrderProcess {
        order_no,
        order_rate,
        stop_after_order,
        buying,
    };
}

/// A monthly campaign touch for 40% of users, with its outcome funnel.
fn monthly_touch(
    who: &Who<'_>,
    m: u32,
    rng: &mut ChaCha8Rng,
    out: &mut Vec<Event>,
    push: &mut impl FnMut(&mut Vec<Event>, DateTime<Utc>, &str, &str, EventBody),
) {
    let Who { brand, user, .. } = *who;
    if rng.random_bool(0.4) {
        let channel = CHANNELS[rng.random_range(0..CHANNELS.len())];
        let content = format!("content-{m:02}-{channel}");
        let mut t = month_start(m) + Duration::days(rng.random_range(0..25)) + Duration::hours(11);
        // Channels differ: SMS is delivered but rarely opened, community posts are read
        // and clicked most, push sits in between.
        let (delivered, opened, clicked) = match channel {
            "sms" => (0.97, 0.18, 0.25),
            "push" => (0.9, 0.3, 0.3),
            "wechat" => (0.95, 0.45, 0.35),
            _ => (0.99, 0.55, 0.45),
        };
        let steps = [
            (TouchOutcome::Sent, 1.0),
            (TouchOutcome::Delivered, delivered),
            (TouchOutcome::Opened, opened),
            (TouchOutcome::Clicked, clicked),
            (TouchOutcome::Converted, 0.3),
        ];
        for (outcome, p) in steps {
            if !rng.random_bool(p) {
                break;
            }
            push(
                out,
                t,
                channel,
                brand,
                EventBody::Touch {
                    user: user.clone(),
                    channel: channel.into(),
                    content: content.clone(),
                    rule: Some(format!("monthly-{channel}")),
                    outcome,
                },
            );
            t += Duration::minutes(rng.random_range(1..180));
        }
    }
}

/// A coupon for 25% of users in a month: issued, then claimed and used or left to expire.
fn monthly_coupon(
    who: &Who<'_>,
    m: u32,
    rng: &mut ChaCha8Rng,
    out: &mut Vec<Event>,
    push: &mut impl FnMut(&mut Vec<Event>, DateTime<Utc>, &str, &str, EventBody),
) {
    let Who { u, brand, user, .. } = *who;
    if rng.random_bool(0.25) {
        let coupon_id = format!("c-{u}-{m}");
        let mut t = month_start(m) + Duration::days(rng.random_range(0..20));
        let mut steps = vec![CouponAction::Issued];
        if rng.random_bool(0.6) {
            steps.push(CouponAction::Claimed);
            steps.push(if rng.random_bool(0.4) {
                CouponAction::Used
            } else {
                CouponAction::Expired
            });
        } else {
            steps.push(CouponAction::Expired);
        }
        for action in steps {
            push(
                out,
                t,
                "app",
                brand,
                EventBody::Coupon {
                    user: user.clone(),
                    coupon_id: coupon_id.clone(),
                    template: "spend-300-save-30".into(),
                    action,
                },
            );
            t += Duration::days(rng.random_range(1..10));
        }
    }
}

/// The events of users `0..users`, all in time order (in memory: for tests).
#[cfg(test)]
pub fn events(users: u32, seed: u64) -> Vec<Event> {
    let mut out: Vec<Event> = (0..users).flat_map(|u| user_events(seed, u)).collect();
    out.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.key.cmp(&b.key)));
    out
}

/// What [`write()`] wrote.
#[derive(Debug, Default)]
pub struct Written {
    /// Events written to `events.jsonl`.
    pub events: u64,
    /// Rows written to `identities.csv`.
    pub identity_rows: u64,
}

/// Write the data set of `users` users into `dir`, user by user (memory stays flat):
/// `events.jsonl` (the wire shape, one event per line, each user's events in time order),
/// and flat tables for batch tools: `identities.csv` (record_id, kind, value, source, ts),
/// `activities.csv` (user, time, type), `registrations.csv` (user, time, program),
/// `orders.csv` (order_id, user, time, amount, channel, region, store) and
/// `order_lines.csv` (order_id, sku, category, price, qty). Users are named by member number.
pub fn write(
    dir: &Path,
    users: u32,
    seed: u64,
    mut progress: impl FnMut(u32),
) -> Result<Written, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let file = |name: &str| -> Result<std::io::BufWriter<std::fs::File>, String> {
        std::fs::File::create(dir.join(name))
            .map(std::io::BufWriter::new)
            .map_err(|e| format!("{name}: {e}"))
    };
    let csv_file = |name: &str, header: &[&str]| -> Result<csv::Writer<std::fs::File>, String> {
        let mut w = csv::Writer::from_path(dir.join(name)).map_err(|e| format!("{name}: {e}"))?;
        w.write_record(header).map_err(|e| format!("{name}: {e}"))?;
        Ok(w)
    };
    let mut jsonl = file("events.jsonl")?;
    let mut identities = csv_file(
        "identities.csv",
        &["record_id", "kind", "value", "source", "ts"],
    )?;
    let mut activities = csv_file("activities.csv", &["user", "time", "type"])?;
    let mut registrations = csv_file("registrations.csv", &["user", "time", "program"])?;
    let mut orders = csv_file(
        "orders.csv",
        &[
            "order_id", "user", "time", "amount", "channel", "region", "store",
        ],
    )?;
    let mut lines = csv_file(
        "order_lines.csv",
        &["order_id", "sku", "category", "price", "qty"],
    )?;
    let mut written = Written::default();
    let err = |e: csv::Error| e.to_string();
    for u in 0..users {
        let member = member_of(u);
        for e in user_events(seed, u) {
            serde_json::to_writer(&mut jsonl, &e).map_err(|e| e.to_string())?;
            jsonl.write_all(b"\n").map_err(|e| e.to_string())?;
            written.events += 1;
            let ts = e.time.to_rfc3339();
            match &e.body {
                EventBody::Identify { ids } => {
                    for i in ids {
                        identities
                            .write_record([
                                e.key.as_str(),
                                i.kind().as_str(),
                                i.value(),
                                e.source.platform.as_str(),
                                ts.as_str(),
                            ])
                            .map_err(err)?;
                        written.identity_rows += 1;
                    }
                }
                EventBody::Activity { activity, .. } => activities
                    .write_record([member.as_str(), ts.as_str(), activity.as_str()])
                    .map_err(err)?,
                EventBody::Register { .. } => registrations
                    .write_record([member.as_str(), ts.as_str(), e.source.program.as_str()])
                    .map_err(err)?,
                EventBody::Order {
                    order_id,
                    amount,
                    channel,
                    region,
                    store,
                    lines: ls,
                    ..
                } => {
                    orders
                        .write_record([
                            order_id.as_str(),
                            member.as_str(),
                            ts.as_str(),
                            amount.to_string().as_str(),
                            channel.as_str(),
                            region.as_str(),
                            store.as_str(),
                        ])
                        .map_err(err)?;
                    for l in ls {
                        lines
                            .write_record([
                                order_id.as_str(),
                                l.sku.as_str(),
                                l.category.as_str(),
                                l.price.to_string().as_str(),
                                l.qty.to_string().as_str(),
                            ])
                            .map_err(err)?;
                    }
                }
                _ => {}
            }
        }
        progress(u);
    }
    jsonl.flush().map_err(|e| e.to_string())?;
    for w in [
        &mut identities,
        &mut activities,
        &mut registrations,
        &mut orders,
        &mut lines,
    ] {
        w.flush().map_err(|e| e.to_string())?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use userops::models::{summary_data, BgNbdFit, Freq};

    #[test]
    fn deterministic_valid_and_independent_of_size() {
        let a = events(300, 1);
        assert_eq!(a, events(300, 1));
        assert_ne!(a, events(300, 2));
        assert!(a.len() > 3000, "{}", a.len());
        assert!(a.windows(2).all(|w| w[0].time <= w[1].time));
        for e in &a {
            e.validate().unwrap();
        }
        // A user's events do not depend on how many users are generated.
        assert_eq!(user_events(1, 42), user_events(1, 42));
        let kinds: std::collections::BTreeSet<&str> = a.iter().map(|e| e.kind_name()).collect();
        for k in userops::Event::KINDS {
            assert!(kinds.contains(k), "no {k} events");
        }
    }

    #[test]
    fn junk_and_shared_identifiers_occur() {
        let a = events(2000, 3);
        let junk = a.iter().filter(|e| match &e.body {
            EventBody::Identify { ids } => ids.iter().any(|i| i.value() == JUNK_DEVICE),
            _ => false,
        });
        assert!(junk.count() > 3);
    }

    /// The order histories carry what BG/NBD models (varying rates, buyers who stop for good):
    /// its fit has an interior maximum, near the shapes the generator draws from. Orders drawn
    /// on active days only (the generator before) sent `a` and `b` to the boundary.
    #[test]
    fn order_histories_admit_a_bgnbd_fit() {
        let (mut users, mut times) = (Vec::new(), Vec::new());
        for u in 0..6000 {
            for e in user_events(11, u) {
                if matches!(e.body, EventBody::Order { .. }) {
                    users.push(u64::from(u));
                    times.push(e.time.timestamp());
                }
            }
        }
        let end = (start() + Duration::days(365)).timestamp();
        let s = summary_data(&users, &times, None, Some(end), Freq::Day).unwrap();
        let fit = BgNbdFit::fit(&s.frequency, &s.recency, &s.t, None).unwrap();
        let p = fit.params;
        // Drawn from a = 0.8, b = 2.5; the season and leaving the app blur it.
        assert!(
            (0.3..3.0).contains(&p.a) && (1.0..10.0).contains(&p.b),
            "{p:?}"
        );
        assert!((0.1..3.0).contains(&p.r), "{p:?}");
    }

    #[test]
    fn writes_tables() {
        let dir = std::env::temp_dir().join(format!("userops-gen-{}", std::process::id()));
        let w = write(&dir, 50, 9, |_| {}).unwrap();
        let jsonl = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
        assert_eq!(jsonl.lines().count() as u64, w.events);
        for line in jsonl.lines().take(50) {
            Event::from_json(line).unwrap();
        }
        let ids = std::fs::read_to_string(dir.join("identities.csv")).unwrap();
        assert_eq!(ids.lines().count() as u64, w.identity_rows + 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
