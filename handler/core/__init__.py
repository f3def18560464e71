"""Domain core: identifiers, API models, selection policy, work messages and events. No I/O here."""
