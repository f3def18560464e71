"""Hardening suites: fault matrix, soak, hostile input, secret hygiene and request forgery."""
