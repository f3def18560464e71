"""Tests of the local-only tools under handler/local/."""
