-- A webhook's delivery settings (core::webhook_settings), as the JSON document the API
-- shows; NULL until they are first changed, which means every default.
ALTER TABLE webhooks ADD COLUMN settings TEXT;
