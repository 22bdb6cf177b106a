"""CareDesk benchmark (see bench/README.md)."""
