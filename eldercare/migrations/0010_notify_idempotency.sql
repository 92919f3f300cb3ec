-- Idempotent notifications: each outbox row gets a random key when it is queued. The
-- dispatcher sends it with every attempt (webhook/robot `Idempotency-Key` header and body,
-- Web Push `Topic` and payload `id`, e-mail `Message-ID`), so a receiver can drop the repeat
-- that at-least-once delivery implies (a dispatcher killed mid-send resends after its lease).
-- Existing rows get a key each (a volatile default is evaluated per row). See docs/alerts.md.
-- depends: 0008_alert_event_time

ALTER TABLE notification_outbox
    ADD COLUMN idempotency_key uuid NOT NULL DEFAULT gen_random_uuid();
