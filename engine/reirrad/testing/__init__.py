"""Test tooling: YAML rule test cases, their pytest plugin, seeded synthetic cohorts."""
