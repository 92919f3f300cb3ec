-- depends: 0019_notify_demo
-- Whether a person chose their language (account page) or it follows their browser: until
-- they choose, users.language is updated from the browser at each login, so notifications
-- (rendered per recipient, alerts/notify) come in the language they read the pages in.

ALTER TABLE users ADD COLUMN language_chosen boolean NOT NULL DEFAULT false;
