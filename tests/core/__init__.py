"""Tests of the domain core: identifiers, models, versions and the selection policy."""
