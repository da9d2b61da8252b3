-- Ordered delivery per object (webhook setting `ordering: "object"`): a delivery of an
-- ordered webhook carries its event's object id, written at publish for such webhooks
-- only (NULL for every other delivery). A claim passes over a keyed delivery while an
-- earlier one of the same (webhook, key) is pending; the partial index answers that in
-- one seek and holds no entry for unordered deliveries, so their inserts and settles
-- never touch it.
ALTER TABLE deliveries ADD COLUMN ordering_key TEXT;
CREATE INDEX deliveries_pending_by_ordering_key ON deliveries (webhook_id, ordering_key, seq)
    WHERE status = 'pending' AND ordering_key IS NOT NULL;
