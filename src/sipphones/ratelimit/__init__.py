"""Zoom's rate limits: per account, per rate-limit label, per plan, per second and per day."""
