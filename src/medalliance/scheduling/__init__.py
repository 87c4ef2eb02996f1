"""Scheduling (号源): department slots, the share reserved for consortium referrals and its
earlier release, and appointments that can never double-book a slot."""
