"""Per-model YAML defaults (data only); read by `memoir.defaults`."""
