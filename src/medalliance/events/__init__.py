"""Integration events (PRODUCT.md N): a transactional outbox, member-system
subscriptions, and webhook delivery with retries so nothing is lost when a member is down."""
