"""``sipphones monitor``: keep the store's phones registered, record their health, export metrics.

Start pacing and refresh jitter belong to the driver's ``RegistrationAgent`` and the
registration machine; this package decides *which* phones run (from the store, following its
changes), records what happens to them, and stops them cleanly.
"""
