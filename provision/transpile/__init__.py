"""``provision transpile``: inputs to one machine config (merging, origins, platform limits)."""
