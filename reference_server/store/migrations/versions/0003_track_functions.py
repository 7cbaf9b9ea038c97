"""PostgreSQL functions for a one-round-trip track: a subject fingerprint and a compare-and-write.

A process keeps the subjects it served in memory (:mod:`reference_server.store.subject_cache`) and
computes the next track from them; ``autumn_track_apply`` then locks the customer, checks in a
fresh snapshot that the customer and the feature's sources are exactly what the process computed
from (same fingerprint), and only then writes the sources and the event, all in one statement.
Any difference (another process, a plan change, a concurrent track) returns NULL and the caller
runs the ordinary locked path.  SQLite needs neither: its track is already in-process and cheap.

Revision ID: 0003_track_functions
Revises: 0002_billing
"""

from __future__ import annotations

from alembic import op

revision = "0003_track_functions"
down_revision = "0002_billing"
branch_labels = None
depends_on = None

FINGERPRINT = """
CREATE OR REPLACE FUNCTION autumn_subject_fingerprint(p_customer_pk bigint, p_features text[])
RETURNS text LANGUAGE plpgsql STABLE AS $$
-- plpgsql rather than sql: its plans are cached per session (an sql function with subqueries is
-- planned on every call, which cost several times the query itself).  STABLE: it reads with the
-- snapshot of the statement that calls it, so a row read and its fingerprint always agree.
DECLARE
    customer_text text;
    sources_text text;
BEGIN
    SELECT c::text INTO customer_text FROM customers c WHERE c.pk = p_customer_pk;
    IF customer_text IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT string_agg(s::text || '/' || coalesce(e.id, ''), '|' ORDER BY s.pk) INTO sources_text
      FROM balance_sources s LEFT OUTER JOIN entities e ON e.pk = s.entity_pk
     WHERE s.customer_pk = p_customer_pk AND s.feature_id = ANY(p_features);
    RETURN md5(customer_text || coalesce(sources_text, ''));
END
$$
"""

APPLY = """
CREATE OR REPLACE FUNCTION autumn_track_apply(
    p_customer_pk bigint, p_features text[], p_expected text, p_updates json, p_event json
) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM 1 FROM customers WHERE pk = p_customer_pk FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    -- A new statement, hence a new snapshot: it sees every write committed before the lock.
    IF autumn_subject_fingerprint(p_customer_pk, p_features) IS DISTINCT FROM p_expected THEN
        RETURN NULL;
    END IF;
    UPDATE balance_sources b
       SET balance = u.balance, adjustment = u.adjustment, next_reset_at = u.next_reset_at,
           expires_at = u.expires_at, allowance = u.allowance, anchor_at = u.anchor_at,
           rollovers = u.rollovers
      FROM json_to_recordset(p_updates) AS u(
           pk bigint, balance float8, adjustment float8, next_reset_at bigint, expires_at bigint,
           allowance float8, anchor_at bigint, rollovers json)
     WHERE b.pk = u.pk AND b.customer_pk = p_customer_pk;
    INSERT INTO events (id, org_pk, env, customer_pk, customer_id, entity_id, feature_id, value,
                        properties, deductions, "timestamp")
    SELECT v.id, v.org, v.env, p_customer_pk, v.customer_id, v.entity_id, v.feature_id, v.value,
           v.properties, v.deductions, v."timestamp"
      FROM json_to_record(p_event) AS v(
           id text, org bigint, env text, customer_id text, entity_id text, feature_id text,
           value float8, properties json, deductions json, "timestamp" bigint);
    RETURN autumn_subject_fingerprint(p_customer_pk, p_features);
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FINGERPRINT)
    op.execute(APPLY)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS autumn_track_apply(bigint, text[], text, json, json)")
    op.execute("DROP FUNCTION IF EXISTS autumn_subject_fingerprint(bigint, text[])")
