"""Local-only tools (CSS emulator, demo, packaging and benchmarks), left out of the deployment artifact."""
