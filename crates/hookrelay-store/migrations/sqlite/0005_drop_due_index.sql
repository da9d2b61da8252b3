-- Claims and the engine's next due time read due work per webhook, along
-- deliveries_pending_by_webhook_due; nothing reads deliveries in due order across
-- webhooks any more, so this index only cost every insert and settle a write.
DROP INDEX deliveries_due;
