"""Notifications: recipients, the outbox, channel senders and the dispatcher."""
