"""Validation and normalization: raw payloads -> one unified format across networks."""
