//! A seeded synthetic data set: users appearing on several platforms with overlapping
//! identifiers, registering, coming back month after month with seasonal peaks, and ordering.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use userops::event::OrderLine;
use userops::{Event, EventBody, IdKind, Identifier, Source, UserRef};

/// Platforms a user may appear on, with the share of users seen there.
const PLATFORMS: [(&str, f64); 5] = [
    ("taobao", 0.45),
    ("jd", 0.35),
    ("app", 0.55),
    ("pos", 0.30),
    ("wechat", 0.50),
];
const PROGRAMS: [&str; 3] = ["brand-a", "brand-b", "brand-c"];
const CATEGORIES: [(&str, u32); 6] = [
    ("fruit", 30),
    ("dairy", 45),
    ("snacks", 20),
    ("household", 80),
    ("appliance", 1999),
    ("beauty", 260),
];
/// Month weights (Jan..Dec): Spring Festival, May Day and National Day peaks.
const SEASON: [f64; 12] = [1.4, 1.3, 0.9, 0.9, 1.3, 1.0, 0.9, 0.9, 1.0, 1.4, 1.2, 1.1];

fn id(kind: IdKind, value: &str) -> Identifier {
    Identifier::new(kind, value).expect("generator writes valid identifiers")
}

fn month_start(year: i32, month: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0)
        .single()
        .expect("valid date")
}

/// Generate the events of `users` users over the 12 months of 2026, in time order.
pub fn events(users: u32, seed: u64) -> Vec<Event> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(users as usize * 24);
    let start = month_start(2026, 1);
    let junk_device = "00000000-0000-0000-0000-000000000000";
    for u in 0..users {
        let program = PROGRAMS[(u as usize) % PROGRAMS.len()];
        let phone = format!("1{:010}", 3_000_000_000u64 + u64::from(u) * 7);
        let member = id(IdKind::MemberNo, &format!("M{u:08}"));
        let reg_day = rng.random_range(0..330);
        let reg_time =
            start + Duration::days(reg_day) + Duration::minutes(rng.random_range(0..1440));
        let mut n = 0u32;
        let mut key = |prefix: &str| {
            n += 1;
            format!("{prefix}-{u}-{n}")
        };
        let source = |platform: &str| Source {
            platform: platform.to_owned(),
            program: program.to_owned(),
        };
        // Identity records, one per platform the user is seen on.
        for (platform, share) in PLATFORMS {
            if !rng.random_bool(share) && platform != "app" {
                continue;
            }
            let mut ids = vec![member.clone()];
            match platform {
                "taobao" | "jd" => {
                    ids = vec![id(IdKind::PlatformUserId, &format!("{platform}_{u}"))];
                    if rng.random_bool(0.8) {
                        ids.push(id(IdKind::Phone, &phone));
                    }
                }
                "app" => {
                    ids.push(id(IdKind::Phone, &phone));
                    let device = if rng.random_bool(0.002) {
                        junk_device.to_owned()
                    } else {
                        format!("dev-{u}")
                    };
                    ids.push(id(IdKind::DeviceId, &device));
                }
                "wechat" => {
                    ids = vec![
                        id(IdKind::OpenId, &format!("o_{u}")),
                        id(IdKind::UnionId, &format!("u_{u}")),
                    ];
                    if rng.random_bool(0.6) {
                        ids.push(id(IdKind::Phone, &phone));
                    }
                }
                _ => {
                    if rng.random_bool(0.5) {
                        ids.push(id(IdKind::Email, &format!("user{u}@example.com")));
                    }
                }
            }
            out.push(Event {
                key: key("id"),
                time: reg_time,
                source: source(platform),
                body: EventBody::Identify { ids },
            });
        }
        let user = UserRef::Id(member.clone());
        out.push(Event {
            key: key("reg"),
            time: reg_time,
            source: source("app"),
            body: EventBody::Register { user: user.clone() },
        });
        // Monthly activity with a per-user propensity that decays (some users churn).
        let mut propensity: f64 = rng.random_range(0.3..0.95);
        let first_month = (reg_time - start).num_days() / 31;
        for m in first_month..12 {
            let season = SEASON[m as usize];
            if rng.random_bool((propensity * season).min(1.0)) {
                let t = (month_start(2026, m as u32 + 1)
                    + Duration::hours(rng.random_range(0..27 * 24)))
                .max(reg_time);
                out.push(Event {
                    key: key("act"),
                    time: t,
                    source: source("app"),
                    body: EventBody::Activity {
                        user: user.clone(),
                        activity: "app_open".into(),
                    },
                });
                if rng.random_bool(0.35) {
                    let (category, base) = CATEGORIES[rng.random_range(0..CATEGORIES.len())];
                    let qty = rng.random_range(1..4);
                    let price =
                        userops::Decimal::new(i64::from(base) * 100 + rng.random_range(0..99), 2);
                    let amount = price * userops::Decimal::from(qty);
                    let platform = PLATFORMS[rng.random_range(0..PLATFORMS.len())].0;
                    out.push(Event {
                        key: key("ord"),
                        time: t + Duration::minutes(5),
                        source: source(platform),
                        body: EventBody::Order {
                            user: user.clone(),
                            order_id: format!("o-{u}-{m}"),
                            amount,
                            channel: platform.into(),
                            region: ["shanghai", "beijing", "guangzhou", "chengdu"][u as usize % 4]
                                .into(),
                            store: String::new(),
                            lines: vec![OrderLine {
                                sku: format!("{category}-{}", rng.random_range(0..20)),
                                category: category.into(),
                                price,
                                qty,
                            }],
                        },
                    });
                }
            }
            propensity *= rng.random_range(0.85..1.02);
        }
    }
    out.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.key.cmp(&b.key)));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn deterministic_and_valid() {
        let a = super::events(200, 1);
        let b = super::events(200, 1);
        assert_eq!(a, b);
        assert!(a.len() > 400);
        assert!(a.windows(2).all(|w| w[0].time <= w[1].time));
        for e in &a {
            e.validate().unwrap();
        }
        assert_ne!(a, super::events(200, 2));
    }
}
