"""Notification channels in the web app: a person's own (/me/channels, `personal`) and a site's
group chats (/sites/{site}/channels, `site`), with their request and response models
(`models`) and their SQL (`store`). What a channel may be set to is checked in
`alerts.notify.channels.validate`, next to the guard that checks its URL at sending time.

Secrets (Web Push keys, robot signing secrets) are stored in `notification_channels.secret`
and never returned; robot URLs are returned with their query values masked, since the
`key=` / `access_token=` in a WeCom or DingTalk robot URL is itself a credential.

Stored `secret` shapes (read by the notification dispatcher):
- webpush: `{"p256dh": "<base64url>", "auth": "<base64url>"}` (target = push endpoint)
- dingtalk or webhook with signing: `{"secret": "..."}` (DingTalk's SEC... secret, or the
  key of the webhook's HMAC-SHA256 signature)
- everything else: `{}`
"""
