"""``sipphones check``: prove that each phone registers with each of its server sets."""
