"""Server-to-Server OAuth: scopes, access tokens and app credentials."""
