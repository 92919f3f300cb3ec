-- depends: 0017_app_role
-- The language a person reads notifications in (BCP 47 tag, e.g. 'en', 'zh-CN').
-- Notifications are rendered per recipient in it (alerts/notify/messages.py); a language the
-- platform has no catalog for falls back to English, so any well-formed tag is accepted.

ALTER TABLE users ADD COLUMN language text NOT NULL DEFAULT 'en'
    CHECK (language ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$');
