"""sipphones: a self-hosted, Zoom-compatible SIP Phone (Phone System Integration) service."""

__version__ = "0.1.0"
