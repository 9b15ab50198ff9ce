//! A seeded simulator of random ledger operations, checking the ledger's invariants.
//!
//! `strict` mode (proptest, few operations): after every operation the full invariant check
//! runs, and a failed operation must leave the ledger equal to a clone taken before it.
//! Bulk mode (1M operations): per-operation checks are the cheap ones (balances against an
//! independent model, counts unchanged by errors and replays), and the full invariant check runs
//! every `full_every` operations and at the end.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rust_decimal::Decimal;

use super::ledger::{BookId, Clawback, Earn, Entry, Ledger, Points, Posting, Rate, Spend};
use super::LoyaltyError;
use crate::ids::OneId;
use crate::util::Rng;

#[derive(Clone)]
enum Req {
    Earn {
        user: u64,
        book: u32,
        points: Points,
        expires: Option<DateTime<Utc>>,
        pending: bool,
        money: Option<Decimal>,
        time: DateTime<Utc>,
    },
    Spend {
        user: u64,
        book: u32,
        points: Points,
        time: DateTime<Utc>,
    },
}

/// What a run saw.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub ops: u64,
    pub ok: u64,
    pub errors: BTreeMap<&'static str, u64>,
    pub replays: u64,
    pub merges: u64,
    pub partial_refunds: u64,
    pub expired: i128,
}

fn err_name(e: &LoyaltyError) -> &'static str {
    match e {
        LoyaltyError::InsufficientPoints { .. } => "insufficient",
        LoyaltyError::DuplicateKey { .. } => "duplicate_key",
        LoyaltyError::UnknownAccount { .. } => "unknown_account",
        LoyaltyError::InvalidAmount { .. } => "invalid_amount",
        LoyaltyError::ExpiryInPast { .. } => "expiry_in_past",
        LoyaltyError::NotPending { .. } => "not_pending",
        _ => "other",
    }
}

fn counts(l: &Ledger) -> (usize, usize, usize) {
    (l.transfers().len(), l.ops().len(), l.buckets().len())
}

/// The simulator's state between operations.
struct Sim {
    rng: Rng,
    l: Ledger,
    users: u64,
    strict: bool,
    time: DateTime<Utc>,
    rates: [Rate; 2],
    merge_convert: BTreeMap<BookId, (BookId, Rate)>,
    /// Accepted writes by key, with their request and first result, for replays.
    keyed: Vec<(String, Req, Posting)>,
    /// Keys of pending earns not yet resolved.
    pendings: Vec<String>,
    /// Keys of accepted earns, for refunds.
    earn_keys: Vec<(String, u32, u64)>,
    next_key: u64,
    stats: Stats,
}

fn bal(l: &Ledger, b: u32, u: u64) -> Points {
    l.balance(BookId(b), OneId(u))
}

/// Run `n` random operations from `seed`. Panics (test failure) on the first broken invariant.
pub(crate) fn run(seed: u64, n: u64, users: u64, strict: bool, full_every: u64) -> Stats {
    let mut l = Ledger::new();
    let books = [
        l.open_book("p0", 0, Clawback::Debt),
        l.open_book("p1", 500, Clawback::Balance),
        l.open_book("p2", 0, Clawback::None),
    ];
    let mut merge_convert = BTreeMap::new();
    merge_convert.insert(books[2], (books[0], Rate { from: 5, to: 1 }));
    let mut sim = Sim {
        rng: Rng(seed),
        l,
        users,
        strict,
        time: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        rates: [Rate { from: 3, to: 2 }, Rate { from: 1, to: 1 }],
        merge_convert,
        keyed: Vec::new(),
        pendings: Vec::new(),
        earn_keys: Vec::new(),
        next_key: 0,
        stats: Stats::default(),
    };
    for i in 0..n {
        sim.stats.ops += 1;
        sim.time += Duration::minutes(sim.rng.below(180) as i64);
        let before = if strict { Some(sim.l.clone()) } else { None };
        let before_counts = counts(&sim.l);
        let roll = sim.rng.below(100);
        let result = if roll < 40 {
            earn(&mut sim)
        } else if roll < 65 {
            spend(&mut sim)
        } else if roll < 73 && !sim.pendings.is_empty() {
            resolve(&mut sim)
        } else if roll < 78 && !sim.earn_keys.is_empty() {
            refund(&mut sim, i)
        } else if roll < 83 {
            convert(&mut sim)
        } else if roll < 85 {
            expire(&mut sim)
        } else if roll < 86 {
            merge(&mut sim)
        } else if !sim.keyed.is_empty() {
            replay(&mut sim, before_counts)
        } else {
            Ok(())
        };
        let l = &sim.l;
        match result {
            Ok(()) => sim.stats.ok += 1,
            Err(e) => {
                *sim.stats.errors.entry(err_name(&e)).or_default() += 1;
                assert_eq!(counts(l), before_counts, "a failed operation wrote: {e:?}");
                if let Some(b) = &before {
                    assert!(b == l, "a failed operation changed the ledger: {e:?}");
                }
            }
        }
        if strict || (i + 1) % full_every == 0 {
            if let Err(msg) = l.check_invariants() {
                panic!("seed {seed}, op {i}: {msg}");
            }
        }
    }
    let l = &sim.l;
    if let Err(msg) = l.check_invariants() {
        panic!("seed {seed}, end: {msg}");
    }
    // The serialized ledger restores to an equal ledger (indexes rebuilt).
    if strict {
        let json = serde_json::to_string(l).expect("ledger serializes");
        let back: Ledger = serde_json::from_str(&json).expect("ledger deserializes");
        assert!(back == *l, "restore differs");
    }
    sim.stats
}

/// Earn, sometimes with a bad amount or an expiry in the past; a pending earn waits to be resolved.
fn earn(sim: &mut Sim) -> Result<(), LoyaltyError> {
    let Sim {
        rng,
        l,
        keyed,
        pendings,
        earn_keys,
        next_key,
        users,
        time,
        ..
    } = sim;
    let (users, time) = (*users, *time);
    // Earn, sometimes with a bad amount or an expiry in the past.
    let user = rng.below(users);
    let book = rng.below(3) as u32;
    let points = match rng.below(100) {
        0 => 0,
        1 => -(rng.below(100) as Points),
        2 => Points::MAX - rng.below(10) as Points,
        _ => 1 + rng.below(1000) as Points,
    };
    let expires = match rng.below(10) {
        0..=3 => None,
        4 => Some(time - Duration::days(1)),
        _ => Some(time + Duration::days(1 + rng.below(120) as i64)),
    };
    let pending = rng.chance(10);
    // Half the earns record an order amount, so that partial refunds reach them.
    let money = rng
        .chance(50)
        .then(|| Decimal::new(1 + rng.below(50_000) as i64, 2));
    *next_key += 1;
    let key = format!("e{next_key}");
    let r = Earn {
        pending,
        money,
        ..Earn::new(
            Entry {
                user: OneId(user),
                book: BookId(book),
                points,
                key: &key,
                reason: "",
                actor: "",
                time,
            },
            expires,
        )
    };
    let model_before = bal(l, book, user);
    match l.earn(&r) {
        Ok(p) => {
            assert!(points > 0 && expires.is_none_or(|e| e > time));
            if pending {
                assert_eq!(p.balance, model_before);
                pendings.push(key.clone());
            } else {
                assert_eq!(p.balance, model_before + points);
            }
            earn_keys.push((key.clone(), book, user));
            keyed.push((
                key,
                Req::Earn {
                    user,
                    book,
                    points,
                    expires,
                    pending,
                    money,
                    time,
                },
                p,
            ));
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Spend, sometimes nothing or more than the balance and its overdraft allow.
fn spend(sim: &mut Sim) -> Result<(), LoyaltyError> {
    let Sim {
        rng,
        l,
        keyed,
        next_key,
        users,
        time,
        ..
    } = sim;
    let (users, time) = (*users, *time);
    let user = rng.below(users);
    let book = rng.below(3) as u32;
    let points = if rng.chance(2) {
        0
    } else {
        1 + rng.below(1500) as Points
    };
    *next_key += 1;
    let key = format!("s{next_key}");
    let r = Spend {
        user: OneId(user),
        book: BookId(book),
        points,
        key: &key,
        reason: "",
        actor: "",
        time,
    };
    let have = bal(l, book, user);
    let overdraft = if book == 1 { 500 } else { 0 };
    let exists = l.member_account(BookId(book), OneId(user)).is_some();
    match l.spend(&r) {
        Ok(p) => {
            assert!(
                points > 0 && have - points >= -overdraft,
                "spend allowed below the floor"
            );
            assert_eq!(p.balance, have - points);
            keyed.push((
                key,
                Req::Spend {
                    user,
                    book,
                    points,
                    time,
                },
                p,
            ));
            Ok(())
        }
        Err(e) => {
            if points > 0 && exists {
                assert!(
                    matches!(e, LoyaltyError::InsufficientPoints { .. }),
                    "unexpected {e:?}"
                );
                assert!(have - points < -overdraft, "spend refused above the floor");
            }
            Err(e)
        }
    }
}

/// Post or cancel a pending earn; resolving again must replay, the other way must fail.
fn resolve(sim: &mut Sim) -> Result<(), LoyaltyError> {
    let Sim {
        rng,
        l,
        pendings,
        time,
        ..
    } = sim;
    let (time,) = (*time,);
    let k = pendings.swap_remove(rng.below(pendings.len() as u64) as usize);
    let post = rng.chance(70);
    match l.resolve(&k, post, time) {
        Ok(p) => {
            assert!(!p.pending);
            // Resolving again the same way is a replay; the other way an error.
            let again = l.resolve(&k, post, time).expect("same resolution replays");
            assert!(again.duplicate);
            assert!(l.resolve(&k, !post, time).is_err());
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Refund an earn's order, in full or in part; it moves what it reports and replays.
fn refund(sim: &mut Sim, i: u64) -> Result<(), LoyaltyError> {
    let Sim {
        rng,
        l,
        earn_keys,
        stats,
        next_key,
        time,
        strict,
        ..
    } = sim;
    let (strict, time) = (*strict, *time);
    let (order, _, _) = earn_keys[rng.below(earn_keys.len() as u64) as usize].clone();
    *next_key += 1;
    let key = format!("r{next_key}");
    // A full scan of member balances: strict mode, or every 64th refund in bulk.
    let scan = strict || i % 64 == 0;
    let total_before: i128 = if !scan {
        0
    } else {
        l.accounts()
            .iter()
            .filter(|a| matches!(a.kind, super::ledger::AccountKind::Member(_)))
            .map(|a| a.balance())
            .sum()
    };
    // Half the refunds are partial (an amount of money; earns without one are skipped).
    let part = rng
        .chance(50)
        .then(|| Decimal::new(1 + rng.below(30_000) as i64, 2));
    let refund = |l: &mut Ledger| match part {
        None => l.refund(&order, &key, time),
        Some(m) => l.refund_amount(&order, &key, time, m),
    };
    match refund(l) {
        Ok(p) => {
            let total_after: i128 = if !scan {
                -i128::from(p.points + p.other)
            } else {
                l.accounts()
                    .iter()
                    .filter(|a| matches!(a.kind, super::ledger::AccountKind::Member(_)))
                    .map(|a| a.balance())
                    .sum()
            };
            assert_eq!(
                total_before - total_after,
                i128::from(p.points + p.other),
                "refund moved other than it reported"
            );
            let again = refund(l).expect("refund replays");
            stats.partial_refunds += u64::from(part.is_some());
            assert!(again.duplicate && again.transfers == p.transfers);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Convert points between two programs at their rate.
fn convert(sim: &mut Sim) -> Result<(), LoyaltyError> {
    let Sim {
        rng,
        l,
        rates,
        next_key,
        users,
        time,
        ..
    } = sim;
    let (users, time) = (*users, *time);
    let user = rng.below(users);
    let (src, dst) = if rng.chance(50) { (0u32, 1u32) } else { (1, 0) };
    let rate = rates[src as usize];
    let points = 1 + rng.below(300) as Points;
    *next_key += 1;
    let key = format!("c{next_key}");
    let (sb, db) = (bal(l, src, user), bal(l, dst, user));
    let exp = Some(time + Duration::days(365));
    match l.convert(
        OneId(user),
        BookId(src),
        BookId(dst),
        points,
        rate,
        &key,
        time,
        exp,
    ) {
        Ok(p) => {
            let lots = points / rate.from;
            assert_eq!(p.points, lots * rate.from);
            assert_eq!(p.other, lots * rate.to);
            assert_eq!(bal(l, src, user), sb - p.points);
            assert_eq!(bal(l, dst, user), db + p.other);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Move the clock on and expire what is due.
fn expire(sim: &mut Sim) -> Result<(), LoyaltyError> {
    let Sim {
        rng,
        l,
        stats,
        time,
        strict,
        ..
    } = sim;
    let (strict,) = (*strict,);
    *time += Duration::days(rng.below(20) as i64);
    let time = *time;
    let before: i128 = l.accounts().iter().map(|a| a.debits_posted).sum();
    let (points, _) = l.expire(time);
    let after: i128 = l.accounts().iter().map(|a| a.debits_posted).sum();
    assert_eq!(after - before, points);
    stats.expired += points;
    // Nothing due remains live (a full scan: strict mode only).
    if strict {
        for b in l.buckets() {
            if b.remaining() > 0 {
                assert!(b.expires.is_none_or(|e| e > time));
            }
        }
    }
    Ok(())
}

/// Merge two members' accounts; no point is lost, converted ones at the merge rate.
fn merge(sim: &mut Sim) -> Result<(), LoyaltyError> {
    let Sim {
        rng,
        l,
        stats,
        merge_convert,
        users,
        time,
        ..
    } = sim;
    let (users, time) = (*users, *time);
    let s = rng.below(users);
    let a = rng.below(users);
    let per_book = |l: &Ledger, u: u64| [0, 1, 2].map(|b| i128::from(bal(l, b, u)));
    let (sb, ab) = (per_book(l, s), per_book(l, a));
    match l.merge_accounts(OneId(s), OneId(a), merge_convert, time) {
        Ok(rep) => {
            stats.merges += 1;
            if s != a {
                let after = per_book(l, s);
                assert_eq!(per_book(l, a), [0, 0, 0]);
                let conv_out: i128 = rep.converted_out.values().map(|&v| i128::from(v)).sum();
                let conv_in: i128 = rep.converted_in.values().map(|&v| i128::from(v)).sum();
                assert_eq!(after[1], sb[1] + ab[1], "merge lost points in p1");
                assert_eq!(
                    after[2],
                    sb[2] + ab[2] - conv_out,
                    "merge lost points in p2"
                );
                assert_eq!(after[0], sb[0] + ab[0] + conv_in, "merge lost points in p0");
                assert_eq!(conv_out, conv_in * 5);
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Replay an old write: same content returns the first result; other content errs.
fn replay(sim: &mut Sim, before_counts: (usize, usize, usize)) -> Result<(), LoyaltyError> {
    let Sim {
        rng,
        l,
        keyed,
        stats,
        ..
    } = sim;
    let (key, req, first) = keyed[rng.below(keyed.len() as u64) as usize].clone();
    let altered = rng.chance(30);
    let res = match req {
        Req::Earn {
            user,
            book,
            points,
            expires,
            pending,
            money,
            time: t,
        } => l.earn(&Earn {
            pending,
            money,
            ..Earn::new(
                Entry {
                    user: OneId(user),
                    book: BookId(book),
                    points: points ^ Points::from(altered),
                    key: &key,
                    reason: "",
                    actor: "",
                    time: t,
                },
                expires,
            )
        }),
        Req::Spend {
            user,
            book,
            points,
            time: t,
        } => l.spend(&Spend {
            user: OneId(user),
            book: BookId(book),
            points: points ^ Points::from(altered),
            key: &key,
            reason: "",
            actor: "",
            time: t,
        }),
    };
    match res {
        Ok(p) => {
            assert!(!altered, "a key reused for other content was accepted");
            assert!(p.duplicate);
            assert_eq!(
                Posting {
                    duplicate: false,
                    ..p
                },
                first
            );
            assert_eq!(counts(l), before_counts, "a replay wrote something");
            stats.replays += 1;
            Ok(())
        }
        Err(e) => {
            assert!(altered && matches!(e, LoyaltyError::DuplicateKey { .. }));
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        /// Every op checked in full; errors must leave the ledger byte-identical.
        #[test]
        fn random_operations_keep_every_invariant(seed in any::<u64>()) {
            let s = super::run(seed, 300, 12, true, 1);
            prop_assert_eq!(s.ops, 300);
        }
    }

    /// 100k operations in the suite (a few seconds of CPU in a debug build).
    #[test]
    fn simulator_100k_operations() {
        let s = super::run(0x5eed, 100_000, 1_000, false, 20_000);
        assert!(s.ok > 50_000 && s.replays > 500 && s.merges > 50, "{s:?}");
        assert!(s.partial_refunds > 500, "{s:?}");
        assert!(
            s.errors.get("insufficient").copied().unwrap_or(0) > 500,
            "{s:?}"
        );
        assert!(s.expired > 0, "{s:?}");
    }

    /// The full million: `cargo test -p userops --release -- --ignored simulator_1m`.
    #[test]
    #[ignore]
    fn simulator_1m_operations() {
        let s = super::run(0x1_000_000, 1_000_000, 10_000, false, 100_000);
        eprintln!("{s:?}");
        assert_eq!(s.ops, 1_000_000);
    }
}
