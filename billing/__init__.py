"""Plans, subscriptions (dj-stripe), quota periods and the quota service."""
