"""Alembic environment wired to GeoAlchemy2's helpers (spatial types and GiST indexes)."""

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import engine_from_config, pool

import alerts.models  # noqa: F401
import audit.models  # noqa: F401
import core.models  # noqa: F401  (registers the tables)
import geo.models  # noqa: F401
import interop.webhook_models  # noqa: F401
import patrols.evidence.models  # noqa: F401
import patrols.liaison.models  # noqa: F401
import patrols.models  # noqa: F401
import patrols.people.models  # noqa: F401
import sensors.frigate_models  # noqa: F401
import sensors.models  # noqa: F401
import sharing.models  # noqa: F401
import watchlists.models  # noqa: F401
from core.models import Base
from core.settings import get_settings

config = context.config
if not config.get_main_option("sqlalchemy.url"):
    config.set_main_option("sqlalchemy.url", get_settings().owner_url().replace("%", "%%"))

target_metadata = Base.metadata

# Tables made by PostGIS itself, and detection partitions made at run time, are not ours to diff.
_IGNORED_TABLES = {"spatial_ref_sys"}


def include_object(obj, name, type_, reflected, compare_to):
    if type_ == "table" and (name in _IGNORED_TABLES or (name or "").startswith("detections_")):
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        include_object=include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        connectable = engine_from_config(
            config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool
        )
        with connectable.connect() as connection:
            _run(connection)
    else:
        _run(connectable)


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
