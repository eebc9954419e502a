"""Accounts, their users and their Server-to-Server OAuth apps."""
