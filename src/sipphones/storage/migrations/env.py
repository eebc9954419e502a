"""Alembic environment: the connection comes from sipphones.storage.database.migrate."""

from alembic import context

from sipphones.storage.schema import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - used only from `alembic` on the command line
    from sipphones.storage.database import sync_engine

    engine = sync_engine(config.attributes.get("sqlalchemy_url") or config.get_main_option("sqlalchemy.url"))
    connection = engine.connect()

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
