//! Webhooks as last read, and which webhooks each (space, event name) goes to, kept
//! while no webhook changes. Every webhook change in a SQLite file commits through
//! this process, which moves the epoch on after the commit; an entry read under an
//! older epoch is never used. So the hot paths (publishing, claiming, sending a
//! queued delivery) neither read the webhooks table nor open sealed secrets again for
//! webhooks that did not change.
//!
//! Also the events this process published lately ([`RecentEvents`]), for claims.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use hookrelay_core::event::Event;
use hookrelay_core::{SpaceId, Webhook, WebhookId};

/// Entries kept at most; past it the cache starts afresh (a very large install just
/// reads more often).
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Default)]
pub(super) struct WebhookCache {
    epoch: AtomicU64,
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    /// The epoch the entries were read under.
    epoch: u64,
    webhooks: HashMap<WebhookId, Arc<Webhook>>,
    subscribers: HashMap<(SpaceId, String), Arc<[String]>>,
}

impl WebhookCache {
    /// The current epoch; read it before reading what is to be cached.
    pub(super) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Called after a commit that may have changed webhooks.
    pub(super) fn changed(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// The webhook as last read, if nothing changed since.
    pub(super) fn webhook(&self, id: &WebhookId) -> Option<Arc<Webhook>> {
        self.current()?.webhooks.get(id).cloned()
    }

    /// The ids of the enabled webhooks of `space` subscribed to `event`, in creation
    /// order, as last read, if nothing changed since.
    pub(super) fn subscribers(&self, space: &SpaceId, event: &str) -> Option<Arc<[String]>> {
        // A tuple key cannot be borrowed as (&, &): the probe allocates, but only the key.
        self.current()?
            .subscribers
            .get(&(space.clone(), event.to_owned()))
            .cloned()
    }

    /// Keeps webhooks read under `epoch`.
    pub(super) fn put_webhooks(&self, epoch: u64, webhooks: impl IntoIterator<Item = Arc<Webhook>>) {
        if let Some(mut entries) = self.entries_for(epoch) {
            for webhook in webhooks {
                entries.webhooks.insert(webhook.id.clone(), webhook);
            }
        }
    }

    /// Keeps subscribers read under `epoch`.
    pub(super) fn put_subscribers(&self, epoch: u64, space: &SpaceId, event: &str, ids: Arc<[String]>) {
        if let Some(mut entries) = self.entries_for(epoch) {
            entries.subscribers.insert((space.clone(), event.to_owned()), ids);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The entries, if they belong to the current epoch.
    fn current(&self) -> Option<MutexGuard<'_, Entries>> {
        let entries = self.lock();
        (entries.epoch == self.epoch()).then_some(entries)
    }

    /// The entries to add to for something read under `epoch`; none if the epoch has
    /// moved on since (what was read may be stale).
    fn entries_for(&self, epoch: u64) -> Option<MutexGuard<'_, Entries>> {
        let mut entries = self.lock();
        if epoch != self.epoch() {
            return None;
        }
        if entries.epoch != epoch || entries.webhooks.len() + entries.subscribers.len() >= MAX_ENTRIES {
            entries.webhooks.clear();
            entries.subscribers.clear();
            entries.epoch = epoch;
        }
        Some(entries)
    }
}

/// Events kept for claims at most, and their `data` bytes at most; the oldest are
/// dropped for new ones. A large event (up to the 1 MiB body limit) takes the place of
/// many small ones instead of growing the memory kept.
const RECENT_EVENTS: usize = 4096;
const RECENT_EVENT_BYTES: usize = 8 << 20;

/// The events this process published last, by id. A delivery is mostly claimed soon
/// after its event is published, and reading the event back on the writer's connection,
/// then parsing its data again, would hold the one writer for every claim. An event
/// changes only when its data is removed (an erasure, which forgets its copy here, or
/// payload expiry, which never touches an event with a pending delivery); one not kept
/// is read as before.
#[derive(Debug, Default)]
pub(super) struct RecentEvents {
    kept: Mutex<KeptEvents>,
}

#[derive(Debug, Default)]
struct KeptEvents {
    by_id: HashMap<String, Arc<Event>>,
    /// The same events, oldest first.
    order: VecDeque<Arc<Event>>,
    /// The `data` bytes of the events kept.
    bytes: usize,
}

impl RecentEvents {
    fn lock(&self) -> MutexGuard<'_, KeptEvents> {
        self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps a stored event (call after its commit).
    pub(super) fn put(&self, event: Arc<Event>) {
        let size = event.data.get().len();
        if size > RECENT_EVENT_BYTES {
            return;
        }
        let mut dropped = Vec::new();
        {
            let mut kept = self.lock();
            while kept.order.len() >= RECENT_EVENTS || kept.bytes + size > RECENT_EVENT_BYTES {
                let Some(oldest) = kept.order.pop_front() else { break };
                kept.by_id.remove(oldest.id.as_str());
                kept.bytes -= oldest.data.get().len();
                dropped.push(oldest);
            }
            kept.bytes += size;
            kept.by_id.insert(event.id.as_str().to_owned(), event.clone());
            kept.order.push_back(event);
        }
        // Freed after the lock is let go: the writer thread may be waiting on it.
        drop(dropped);
    }

    /// Forgets the events of `ids` (their data was erased).
    pub(super) fn forget<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let mut dropped = Vec::new();
        {
            let mut kept = self.lock();
            for id in ids {
                if let Some(event) = kept.by_id.remove(id) {
                    kept.order.retain(|kept| !Arc::ptr_eq(kept, &event));
                    kept.bytes -= event.data.get().len();
                    dropped.push(event);
                }
            }
        }
        drop(dropped);
    }

    /// The events of `ids` that are kept, in the same order (`None` where not kept).
    pub(super) fn get_all<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> Vec<Option<Arc<Event>>> {
        let kept = self.lock();
        ids.into_iter().map(|id| kept.by_id.get(id).cloned()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookrelay_core::{ApiRelease, Timestamp, VerificationMethod};

    fn webhook(id: &WebhookId) -> Arc<Webhook> {
        Arc::new(Webhook {
            id: id.clone(),
            space_id: SpaceId::parse("spc-cache").unwrap(),
            name: "w".into(),
            url: "https://example.com".into(),
            enabled: true,
            events: vec!["payment.completed".into()],
            api_release: ApiRelease::parse("caph").unwrap(),
            verification: VerificationMethod::Hs256 { secret: "s".repeat(32) },
            headers: Default::default(),
            alert_emails: Vec::new(),
            metadata: Default::default(),
            create_time: Timestamp::from_micros(0),
            update_time: Timestamp::from_micros(0),
            settings: Default::default(),
        })
    }

    #[test]
    fn recent_events_keep_the_newest() {
        let recent = RecentEvents::default();
        let event = |n: usize| {
            let mut event = hookrelay_core::event::EventDraft::parse(
                &serde_json::json!({"name": "payment.completed", "object": {"id": "p", "type": "payment"}, "data": {}}),
                &hookrelay_core::EventCatalog::default(),
            )
            .unwrap()
            .into_event(SpaceId::parse("spc-cache").unwrap(), Timestamp::from_micros(0));
            event.id = hookrelay_core::EventId::parse(&format!("evt-{n}")).unwrap();
            Arc::new(event)
        };
        for n in 0..=RECENT_EVENTS {
            recent.put(event(n));
        }
        let found = recent.get_all(["evt-0", "evt-1", &format!("evt-{RECENT_EVENTS}"), "evt-x"]);
        let ids: Vec<Option<&str>> = found.iter().map(|e| e.as_deref().map(|e| e.id.as_str())).collect();
        let newest = format!("evt-{RECENT_EVENTS}");
        assert_eq!(ids, [None, Some("evt-1"), Some(newest.as_str()), None]);

        // Large events push out as many bytes as they bring.
        let big = |n: usize| {
            let mut event = (*event(n)).clone();
            event.data = serde_json::value::RawValue::from_string(format!("\"{}\"", "x".repeat(3 << 20))).unwrap();
            Arc::new(event)
        };
        for n in [90_001, 90_002, 90_003] {
            recent.put(big(n));
        }
        let found = recent.get_all(["evt-90001", "evt-90002", "evt-90003", &newest]);
        assert_eq!(
            found.iter().map(Option::is_some).collect::<Vec<_>>(),
            [false, true, true, false]
        );
        assert!(recent.lock().bytes <= RECENT_EVENT_BYTES);
    }

    #[test]
    fn erased_events_are_forgotten() {
        let recent = RecentEvents::default();
        for n in 0..3 {
            let mut event = hookrelay_core::event::EventDraft::parse(
                &serde_json::json!({"name": "payment.completed", "object": {"id": "p", "type": "payment"}, "data": {"n": n}}),
                &hookrelay_core::EventCatalog::default(),
            )
            .unwrap()
            .into_event(SpaceId::parse("spc-cache").unwrap(), Timestamp::from_micros(0));
            event.id = hookrelay_core::EventId::parse(&format!("evt-{n}")).unwrap();
            recent.put(Arc::new(event));
        }
        recent.forget(["evt-1", "evt-9"]);
        let found = recent.get_all(["evt-0", "evt-1", "evt-2"]);
        let ids: Vec<Option<&str>> = found.iter().map(|e| e.as_deref().map(|e| e.id.as_str())).collect();
        assert_eq!(ids, [Some("evt-0"), None, Some("evt-2")]);
        let kept = recent.lock();
        assert_eq!(kept.order.len(), 2);
        assert_eq!(kept.bytes, 2 * r#"{"n":0}"#.len());
    }

    #[test]
    fn a_change_hides_everything_read_before_it() {
        let cache = WebhookCache::default();
        let id = WebhookId::generate();
        let space = SpaceId::parse("spc-cache").unwrap();
        let read_under = cache.epoch();
        cache.put_webhooks(read_under, [webhook(&id)]);
        cache.put_subscribers(
            read_under,
            &space,
            "payment.completed",
            Arc::from(vec![id.as_str().to_owned()]),
        );
        assert!(cache.webhook(&id).is_some());
        assert_eq!(cache.subscribers(&space, "payment.completed").unwrap().len(), 1);
        assert!(cache.subscribers(&space, "payout.failed").is_none());

        cache.changed();
        assert!(cache.webhook(&id).is_none());
        assert!(cache.subscribers(&space, "payment.completed").is_none());
    }

    #[test]
    fn what_was_read_before_a_change_is_not_kept() {
        let cache = WebhookCache::default();
        let id = WebhookId::generate();
        let read_under = cache.epoch();
        cache.changed(); // committed while the read was under way
        cache.put_webhooks(read_under, [webhook(&id)]);
        assert!(cache.webhook(&id).is_none());
        cache.put_webhooks(cache.epoch(), [webhook(&id)]);
        assert!(cache.webhook(&id).is_some());
    }
}
