"""Shared building blocks: clock, ids, enum columns, workflow transition tables."""
