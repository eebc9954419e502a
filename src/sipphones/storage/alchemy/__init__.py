"""The SQLAlchemy Core path of the store (admin, CLI, monitor and search operations)."""
