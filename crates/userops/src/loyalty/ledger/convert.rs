//! Conversion of a member's points from one program into another at a [`Rate`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::keys::{OpKind, Posting, Print};
use super::transfer::TransferKind;
use super::{overflow, positive, BookId, Ledger, Points};
use crate::ids::OneId;
use crate::loyalty::LoyaltyError;

/// A conversion rate: `from` source points make `to` destination points.
///
/// Rounding: only whole lots of `from` points convert; the remainder stays in the source
/// account. Points are never created by rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    /// Source points per lot (> 0).
    pub from: Points,
    /// Destination points per lot (> 0).
    pub to: Points,
}

impl Ledger {
    /// Convert points of `src` into `dst` at `rate`: whole lots only, the remainder stays.
    /// Converted points expire by `dst_expires`.
    ///
    /// # Errors
    ///
    /// Nothing changes on an error. `invalid_argument`: an empty key. `ledger_duplicate_key`: the
    /// key already wrote other content. `invalid_amount`: points not above 0, a rate without
    /// positive lot sizes, the same program on both sides, fewer points than one lot, or a balance
    /// that would overflow. `not_found`: an unknown book. `unknown_account`: the member has no
    /// account in `src`. `insufficient_points`: fewer live points than the whole lots use.
    /// `expiry_in_past`: `dst_expires` not after `time`.
    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per field of the convert command"
    )]
    pub fn convert(
        &mut self,
        user: OneId,
        src: BookId,
        dst: BookId,
        points: Points,
        rate: Rate,
        key: &str,
        time: DateTime<Utc>,
        dst_expires: Option<DateTime<Utc>>,
    ) -> Result<Posting, LoyaltyError> {
        let print = Print::new(OpKind::Convert)
            .u64(user.0)
            .u64(u64::from(src.0))
            .u64(u64::from(dst.0))
            .u64(points as u64)
            .0;
        if let Some(p) = self.replay(key, print)? {
            return Ok(p);
        }
        positive("points", points)?;
        if rate.from <= 0 || rate.to <= 0 {
            return Err(LoyaltyError::InvalidAmount {
                field: "rate",
                reason: "a rate needs positive lot sizes".into(),
            });
        }
        let (sb, db) = (
            self.book_checked(src)?.clone(),
            self.book_checked(dst)?.clone(),
        );
        if src == dst {
            return Err(LoyaltyError::InvalidAmount {
                field: "dst",
                reason: "source and destination are the same program".into(),
            });
        }
        let account =
            self.member_account(src, user)
                .ok_or_else(|| LoyaltyError::UnknownAccount {
                    program: sb.program.clone(),
                    user: format!("OneID {user}"),
                })?;
        let lots = points / rate.from;
        let used = lots * rate.from;
        if lots == 0 {
            return Err(LoyaltyError::InvalidAmount {
                field: "points",
                reason: format!(
                    "{points} points make no whole lot of {} at this rate",
                    rate.from
                ),
            });
        }
        let out = lots
            .checked_mul(rate.to)
            .ok_or_else(|| overflow("points"))?;
        let available = self
            .live_points(account)
            .min(self.accounts[account.0 as usize].points());
        if available < used {
            return Err(LoyaltyError::InsufficientPoints {
                available,
                requested: used,
            });
        }
        if let Some(e) = dst_expires {
            if e <= time {
                return Err(LoyaltyError::ExpiryInPast { expires: e, time });
            }
        }
        let dst_acc = self.member_account(dst, user);
        if !self.can_credit(dst_acc, out)
            || !self.can_debit(db.conversion, out)
            || !self.can_credit(Some(sb.conversion), used)
        {
            return Err(overflow("points"));
        }
        let dst_acc = self.account_or_new(dst, user);
        let mut op = self.new_op_keyed(key, OpKind::Convert, print);
        op.points = used;
        op.other = out;
        let o = self.push_op(op);
        self.take_fifo(account, used);
        self.transfer(
            o,
            account,
            sb.conversion,
            used,
            TransferKind::ConvertOut,
            time,
            None,
            None,
        );
        let t = self.transfer(
            o,
            db.conversion,
            dst_acc,
            out,
            TransferKind::ConvertIn,
            time,
            None,
            dst_expires,
        );
        self.fill(dst_acc, out, dst_expires, t);
        Ok(self.finish_op(o, Some(account)))
    }
}
