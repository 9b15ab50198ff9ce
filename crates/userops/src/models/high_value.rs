//! High-value screening (seed 001): order interval, frequency and amount combined with
//! community interaction (messages, message interval, influence).
//!
//! Features per customer over the rows with `as_of − window_days < time ≤ as_of`:
//! - `orders`, `amount` (sum), `order_interval_days` = (last − first order) / (orders − 1) in
//!   days, `None` with fewer than 2 orders;
//! - `messages`, `message_interval_days` (likewise over messages), `influence` = replies other
//!   customers sent to this customer's messages (a message with `reply_to = c`, from someone
//!   other than c).
//!
//! A customer is high-value when every criterion set in [`HighValueRule`] holds; an interval
//! criterion fails when the interval is undefined.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{check_amounts, ModelError};

/// Screening features of one customer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HighValueFeatures {
    /// Customer key.
    pub customer: u64,
    /// Orders in the window.
    pub orders: u64,
    /// Their summed amount.
    pub amount: f64,
    /// Mean days between consecutive orders.
    pub order_interval_days: Option<f64>,
    /// Community messages in the window.
    pub messages: u64,
    /// Mean days between consecutive messages.
    pub message_interval_days: Option<f64>,
    /// Replies received from others.
    pub influence: u64,
}

/// Thresholds; `None`/0 criteria are not applied (missing fields take those defaults).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HighValueRule {
    /// At least this many orders.
    pub min_orders: u64,
    /// At least this amount.
    pub min_amount: f64,
    /// Orders at most this many days apart on average.
    pub max_order_interval_days: Option<f64>,
    /// At least this many messages.
    pub min_messages: u64,
    /// Messages at most this many days apart on average.
    pub max_message_interval_days: Option<f64>,
    /// At least this many replies received.
    pub min_influence: u64,
}

impl HighValueRule {
    /// Whether a customer passes every set criterion.
    pub fn passes(&self, f: &HighValueFeatures) -> bool {
        let within = |max: Option<f64>, v: Option<f64>| match max {
            None => true,
            Some(m) => v.is_some_and(|v| v <= m),
        };
        f.orders >= self.min_orders
            && f.amount >= self.min_amount
            && within(self.max_order_interval_days, f.order_interval_days)
            && f.messages >= self.min_messages
            && within(self.max_message_interval_days, f.message_interval_days)
            && f.influence >= self.min_influence
    }
}

fn mean_interval(times: &mut [i64]) -> Option<f64> {
    if times.len() < 2 {
        return None;
    }
    times.sort_unstable();
    let span = (times[times.len() - 1] - times[0]) as f64 / 86_400.0;
    Some(span / (times.len() - 1) as f64)
}

/// Orders: (customer, time, amount); messages: (customer, time, replied-to customer).
pub struct HighValueInput<'a> {
    /// Order customers.
    pub order_customers: &'a [u64],
    /// Order times.
    pub order_times: &'a [i64],
    /// Order amounts.
    pub order_amounts: &'a [f64],
    /// Message authors.
    pub message_customers: &'a [u64],
    /// Message times.
    pub message_times: &'a [i64],
    /// Whom each message replies to.
    pub reply_to: &'a [Option<u64>],
}

/// Features for every customer with an order or a message in the window, sorted by key.
///
/// # Errors
///
/// [`ModelError::InvalidInput`]: order or message columns of different lengths, or an order
/// amount that is not a finite number ≥ 0.
pub fn high_value_features(
    input: &HighValueInput<'_>,
    as_of: i64,
    window_days: Option<u32>,
) -> Result<Vec<HighValueFeatures>, ModelError> {
    let HighValueInput {
        order_customers: oc,
        order_times: ot,
        order_amounts: oa,
        message_customers: mc,
        message_times: mt,
        reply_to: rt,
    } = *input;
    if oc.len() != ot.len() || oc.len() != oa.len() || mc.len() != mt.len() || mc.len() != rt.len()
    {
        return Err(ModelError::invalid(
            "columns",
            "columns must have equal length",
        ));
    }
    check_amounts("order_amounts", oa)?;
    let lo = window_days.map(|d| as_of.saturating_sub(i64::from(d) * 86_400));
    let inside = |t: i64| t <= as_of && lo.is_none_or(|l| t > l);
    #[derive(Default)]
    struct Acc {
        order_times: Vec<i64>,
        amount: f64,
        message_times: Vec<i64>,
        influence: u64,
    }
    let mut acc: BTreeMap<u64, Acc> = BTreeMap::new();
    for i in (0..oc.len()).filter(|&i| inside(ot[i])) {
        let a = acc.entry(oc[i]).or_default();
        a.order_times.push(ot[i]);
        a.amount += oa[i];
    }
    for i in (0..mc.len()).filter(|&i| inside(mt[i])) {
        acc.entry(mc[i]).or_default().message_times.push(mt[i]);
        if let Some(to) = rt[i].filter(|&to| to != mc[i]) {
            acc.entry(to).or_default().influence += 1;
        }
    }
    Ok(acc
        .into_iter()
        .map(|(c, mut a)| HighValueFeatures {
            customer: c,
            orders: a.order_times.len() as u64,
            amount: a.amount,
            order_interval_days: mean_interval(&mut a.order_times),
            messages: a.message_times.len() as u64,
            message_interval_days: mean_interval(&mut a.message_times),
            influence: a.influence,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_and_rule() {
        let d = 86_400;
        let input = HighValueInput {
            order_customers: &[1, 1, 1, 2],
            order_times: &[0, 10 * d, 20 * d, 5 * d],
            order_amounts: &[100.0, 100.0, 100.0, 50.0],
            message_customers: &[1, 2, 2, 3],
            message_times: &[d, 2 * d, 4 * d, 3 * d],
            reply_to: &[None, Some(1), Some(2), Some(1)],
        };
        let f = high_value_features(&input, 30 * d, None).unwrap();
        assert_eq!(
            f.iter().map(|x| x.customer).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(f[0].order_interval_days, Some(10.0));
        assert_eq!(f[0].influence, 2); // replies from 2 and 3; 2's self-reply does not count
        assert_eq!(f[1].influence, 0);
        assert_eq!(f[1].message_interval_days, Some(2.0));
        let rule = HighValueRule {
            min_orders: 2,
            min_amount: 200.0,
            max_order_interval_days: Some(15.0),
            min_influence: 1,
            ..HighValueRule::default()
        };
        assert!(rule.passes(&f[0]));
        assert!(!rule.passes(&f[1]));
        let recent = high_value_features(&input, 30 * d, Some(15)).unwrap();
        assert_eq!(recent[0].orders, 1);
    }
}
