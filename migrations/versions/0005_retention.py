"""Retention: detections without a default partition, so old months detach CONCURRENTLY.

PostgreSQL refuses ``DETACH PARTITION ... CONCURRENTLY`` while the partitioned table has a
default partition. Detections only ever land in monthly partitions: the ingest worker accepts
observations up to ``BW_MAX_DETECTION_AGE_DAYS`` old and minutes ahead, and creates the months
around now every hour (``bw_ensure_detection_partitions``). Any rows the default partition
holds move into monthly partitions created for them.

Revision ID: 0005_retention
Revises: 0004_ingest_subscriptions
"""

from alembic import op

revision = "0005_retention"
down_revision = "0004_ingest_subscriptions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE detections DETACH PARTITION detections_default")
    op.execute(
        """
        DO $$
        DECLARE m date;
        BEGIN
          FOR m IN SELECT DISTINCT date_trunc('month', observed_at AT TIME ZONE 'UTC')::date
                   FROM detections_default LOOP
            PERFORM bw_ensure_detection_partitions(m, 1);
          END LOOP;
        END $$
        """
    )
    op.execute("INSERT INTO detections SELECT * FROM detections_default")
    op.execute("DROP TABLE detections_default")


def downgrade() -> None:
    op.execute("CREATE TABLE detections_default PARTITION OF detections DEFAULT")
