"""The ``sipphones`` command line."""
