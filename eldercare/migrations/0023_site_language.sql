-- depends: 0019_notify_demo
-- The language a site's group channels (WeCom/DingTalk robots, a group e-mail or webhook) are
-- written to in: they have no person whose language could be asked (users.language), so the
-- site says it (alerts/notify/outbox.py). The platform checks it is one it speaks
-- (kernel.i18n.LANGUAGES); the database only that it is a well-formed BCP 47 tag, as for users.

ALTER TABLE sites ADD COLUMN language text NOT NULL DEFAULT 'en'
    CHECK (language ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$');
