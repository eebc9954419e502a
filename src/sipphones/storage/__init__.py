"""Storage: the repository interface, its SQL implementation, migrations and secrets at rest."""
