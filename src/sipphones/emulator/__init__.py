"""Emulator mode: the control plane a test suite drives (reset, seed, snapshot, clock, and the
request journal and fault rules), with no HTTP in it (``sipphones.api.control`` serves it)."""
