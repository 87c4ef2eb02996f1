"""Append-only, hash-chained audit log of every login, write and clinical read."""
