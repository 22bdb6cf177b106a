"""Application services: the turn runner, staff commands, escalations, notifications, the inbox and outbox queues."""
