"""Ingestion: landed files become validated, deduplicated, ledgered, PII-safe events."""
