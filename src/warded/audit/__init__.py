"""The hash-chained audit log: records, the store port, verification."""
