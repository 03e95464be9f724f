"""Bytes to values with source positions (JSON and YAML)."""
