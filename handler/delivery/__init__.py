"""Delivery adapters: broadcast events (SNS, EventBridge, standard output), announce once, dead-letter, reply on Slack."""
