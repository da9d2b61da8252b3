//! Pacing a claim by `hookrelay_core::pace`, for both backends: which claimed
//! deliveries draw on a rate-limited webhook's bucket, and which the bucket's tokens
//! cover. The backends debit the buckets (SQL, one transaction) and give back the rest.

use std::collections::{BTreeMap, HashMap};

use crate::ClaimedDelivery;

/// A rate-limited webhook's share of a claim: its id, its rate, how many it claimed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Want {
    pub webhook_id: String,
    pub rate: u32,
    pub wanted: u32,
}

/// What each rate-limited webhook of `claimed` wants, by webhook id (the order buckets
/// are locked in, so two claims cannot deadlock).
pub(crate) fn wants(claimed: &[ClaimedDelivery]) -> Vec<Want> {
    let mut wants: BTreeMap<&str, Want> = BTreeMap::new();
    for delivery in claimed {
        let Some(rate) = delivery.webhook.settings.max_deliveries_per_second else {
            continue;
        };
        let id = delivery.webhook.id.as_str();
        let want = wants.entry(id).or_insert_with(|| Want {
            webhook_id: id.to_owned(),
            rate,
            wanted: 0,
        });
        want.wanted += 1;
    }
    wants.into_values().collect()
}

/// Splits `claimed` (in the claim's order) into what goes out now and what is given
/// back: each rate-limited webhook's first `granted[id]` deliveries go out (none if it
/// has no grant), every other webhook's all. `paced` names an item's webhook when it
/// is rate-limited.
pub(crate) fn split<T>(
    claimed: Vec<T>,
    paced: impl Fn(&T) -> Option<&str>,
    granted: &HashMap<String, u32>,
) -> (Vec<T>, Vec<T>) {
    let mut left: HashMap<&str, u32> = granted.iter().map(|(id, n)| (id.as_str(), *n)).collect();
    let (mut kept, mut surplus) = (Vec::with_capacity(claimed.len()), Vec::new());
    for item in claimed {
        let covered = match paced(&item) {
            None => true,
            Some(webhook) => left
                .get_mut(webhook)
                .is_some_and(|n| n.checked_sub(1).map(|rest| *n = rest).is_some()),
        };
        if covered {
            kept.push(item);
        } else {
            surplus.push(item);
        }
    }
    (kept, surplus)
}

/// The webhook of a claimed delivery, if it is rate-limited.
pub(crate) fn paced(delivery: &ClaimedDelivery) -> Option<&str> {
    let webhook = &delivery.webhook;
    webhook.settings.max_deliveries_per_second.map(|_| webhook.id.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_limited_webhook_keeps_its_first_granted_and_the_others_all() {
        let claimed = vec![("a", 1), ("free", 2), ("a", 3), ("b", 4), ("a", 5), ("free", 6)];
        let granted = HashMap::from([("a".to_owned(), 2), ("b".to_owned(), 0)]);
        fn paced<'a>(item: &'a (&'static str, u32)) -> Option<&'a str> {
            (item.0 != "free").then_some(item.0)
        }
        let (kept, surplus) = split(claimed.clone(), paced, &granted);
        let numbers = |items: Vec<(&str, u32)>| items.into_iter().map(|i| i.1).collect::<Vec<_>>();
        assert_eq!(numbers(kept), [1, 2, 3, 6]);
        assert_eq!(numbers(surplus), [4, 5]);
        let (kept, _) = split(claimed, paced, &HashMap::new());
        assert_eq!(numbers(kept), [2, 6], "no grant, nothing limited goes out");
    }
}
