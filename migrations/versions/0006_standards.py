"""Standards other tools speak: Frigate zones on the ground.

Revision ID: 0006_standards
Revises: 0003_analytics
Create Date: 2026-11-22 17:00:00
"""
from alembic import op
import sqlalchemy as sa
from geoalchemy2 import Geometry

revision = "0006_standards"
down_revision = "0003_analytics"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "frigate_zones",
        sa.Column("sensor_id", sa.String(64), sa.ForeignKey("sensors.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("geom", Geometry("POLYGON", srid=4326, spatial_index=False), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("frigate_zones")
