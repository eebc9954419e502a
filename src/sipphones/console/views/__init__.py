"""The console's views: HTTP translation only (forms, cookies, redirects) over the domain services."""
