"""provision: a first-boot provisioning engine."""

__version__ = "0.1.0"
