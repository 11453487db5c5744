"""A cooldown that holds within a batch as across batches: ``bw_cooldown_passes``.

A batch may hold several alerts' worth of one track and target (a backlog uploaded after an
outage, a replayed buffer, a worker catching up): the rules take them in observed time and keep
each one that comes a full cooldown after the last one kept, starting from the time stored in
``alert_cooldowns``. That walk is the window aggregate

    bw_cooldown_passes(observed_at, stored_last_observed_at, cooldown)
        OVER (PARTITION BY track_key, target ORDER BY observed_at, id
              ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)

true on the rows kept. Its state is ``{last kept, this row's time if kept}``; a NULL stored time
(no alert yet) lets the first row pass.

Revision ID: 0012_cooldown_chain
Revises: 0011_new_detections
Create Date: 2026-12-04 20:00:00
"""

from alembic import op

revision = "0012_cooldown_chain"
down_revision = "0011_new_detections"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION bw_cooldown_step(state timestamptz[], at timestamptz, stored timestamptz, cooldown interval)
        RETURNS timestamptz[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
            SELECT CASE WHEN coalesce(state[1], stored, '-infinity') <= at - cooldown
                        THEN ARRAY[at, at]
                        ELSE ARRAY[coalesce(state[1], stored, '-infinity'), NULL] END
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION bw_cooldown_kept(state timestamptz[]) RETURNS boolean
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT state[2] IS NOT NULL $$
        """
    )
    op.execute(
        """
        CREATE AGGREGATE bw_cooldown_passes(timestamptz, timestamptz, interval) (
            SFUNC = bw_cooldown_step, STYPE = timestamptz[], FINALFUNC = bw_cooldown_kept
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP AGGREGATE bw_cooldown_passes(timestamptz, timestamptz, interval)")
    op.execute("DROP FUNCTION bw_cooldown_kept(timestamptz[])")
    op.execute("DROP FUNCTION bw_cooldown_step(timestamptz[], timestamptz, timestamptz, interval)")
