//! Pacing a claim by `hookrelay_core::pace`, for both backends: which claimed
//! deliveries draw on a rate-limited webhook's bucket, and which the bucket's tokens
//! cover. The backends debit the buckets (SQL, one transaction) and give back the rest.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use hookrelay_core::{DeliveryId, WebhookId};

use crate::{ClaimRequest, ClaimStore, ClaimedDelivery, StoreError};

/// A backend's SQL for a paced claim.
#[async_trait]
pub(crate) trait PacedClaims: ClaimStore {
    /// Leases due deliveries: how many it leased, and those to send, before pacing.
    async fn claim_leased(&self, request: &ClaimRequest) -> Result<(usize, Vec<ClaimedDelivery>), StoreError>;

    /// In one transaction, debits each wanted webhook's bucket at the claim's time and
    /// gives back the deliveries of `claimed` its tokens do not cover ([`split`]);
    /// answers how many each webhook was granted.
    async fn debit_and_give_back(
        &self,
        request: &ClaimRequest,
        wants: Vec<Want>,
        claimed: &[ClaimedDelivery],
    ) -> Result<HashMap<String, u32>, StoreError>;
}

/// Of `claimed`, those that may go out now: all but the rate-limited webhooks' beyond
/// their tokens, which are given back; and the webhooks whose deliveries were. Should the
/// debit fail, the limited webhooks' deliveries are given back and the others go out.
async fn pace_claim(
    store: &impl PacedClaims,
    request: &ClaimRequest,
    claimed: Vec<ClaimedDelivery>,
) -> (Vec<ClaimedDelivery>, Vec<WebhookId>) {
    let wants = wants(&claimed);
    if wants.is_empty() {
        return (claimed, Vec::new());
    }
    match store.debit_and_give_back(request, wants, &claimed).await {
        Ok(granted) => {
            let (kept, surplus) = split(claimed, paced, &granted);
            (kept, held_back(&surplus))
        }
        Err(error) => {
            tracing::warn!(%error, "debiting rate-limited webhooks' buckets failed; their deliveries are given back");
            let (kept, given_back) = split(claimed, paced, &HashMap::new());
            let webhooks = held_back(&given_back);
            let ids: Vec<DeliveryId> = given_back.into_iter().map(|d| d.delivery_id).collect();
            if let Err(error) = store
                .release_deliveries(&ids, &request.owner, request.lease_until)
                .await
            {
                tracing::warn!(%error, "giving back rate-limited deliveries failed; their leases run out");
            }
            (kept, webhooks)
        }
    }
}

/// Claims and paces what it claimed; a claim that filled its limit and gave some back
/// claims again for the room ([`follow_up`]). A follow-up that fails ends the claim with
/// what earlier rounds leased: those go out rather than wait for their leases to run out.
pub(crate) async fn claim_paced(
    store: &impl PacedClaims,
    request: &ClaimRequest,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let mut claimed: Vec<ClaimedDelivery> = Vec::new();
    let mut next = Some(request.clone());
    while let Some(round) = next.take() {
        let (leased, ready) = match store.claim_leased(&round).await {
            Ok(found) => found,
            Err(error) if !claimed.is_empty() => {
                tracing::warn!(%error, "a follow-up claim failed; sending what was claimed");
                break;
            }
            Err(error) => return Err(error),
        };
        let (kept, held_back) = pace_claim(store, &round, ready).await;
        next = follow_up(&round, leased, kept.len(), held_back);
        claimed.extend(kept);
        if let Some(next) = next.as_mut() {
            // A webhook served already has had its `per_webhook`.
            next.skip_webhooks.extend(claimed.iter().map(|d| d.webhook.id.clone()));
            next.skip_webhooks.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
            next.skip_webhooks.dedup();
        }
    }
    Ok(claimed)
}

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

/// The distinct webhooks of the deliveries given back.
pub(crate) fn held_back(surplus: &[ClaimedDelivery]) -> Vec<WebhookId> {
    let mut webhooks: Vec<WebhookId> = surplus.iter().map(|d| d.webhook.id.clone()).collect();
    webhooks.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
    webhooks.dedup();
    webhooks
}

/// The claim to make next after one that leased `leased` deliveries and kept `kept`,
/// giving back those of the `held_back` webhooks beyond their tokens: when it had filled
/// its limit, the same claim for the room left, passing those webhooks over, so that
/// rate-limited webhooks' backlogs cannot crowd the others out of claims. Each follow-up
/// passes over at least one more webhook, so they end.
pub(crate) fn follow_up(
    request: &ClaimRequest,
    leased: usize,
    kept: usize,
    held_back: Vec<WebhookId>,
) -> Option<ClaimRequest> {
    let room = u32::try_from(kept)
        .ok()
        .and_then(|kept| request.limit.checked_sub(kept))?;
    if held_back.is_empty() || leased < request.limit as usize || room == 0 {
        return None;
    }
    let mut next = request.clone();
    next.limit = room;
    next.skip_webhooks.extend(held_back);
    Some(next)
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

    #[test]
    fn a_full_claim_that_gave_some_back_claims_again_for_the_room_passing_those_over() {
        let request = ClaimRequest {
            now: hookrelay_core::Timestamp::from_micros(0),
            lease_until: hookrelay_core::Timestamp::from_micros(1),
            owner: "node".into(),
            limit: 10,
            per_webhook: 5,
            skip_webhooks: vec![WebhookId::parse("whk-full").unwrap()],
        };
        let paced = || vec![WebhookId::parse("whk-paced").unwrap()];
        let next = follow_up(&request, 10, 4, paced()).expect("a follow-up");
        assert_eq!(next.limit, 6);
        let skipped: Vec<&str> = next.skip_webhooks.iter().map(WebhookId::as_str).collect();
        assert_eq!(skipped, ["whk-full", "whk-paced"]);
        assert!(
            follow_up(&request, 9, 4, paced()).is_none(),
            "the claim took all there was"
        );
        assert!(follow_up(&request, 10, 10, Vec::new()).is_none(), "nothing given back");
    }
}
