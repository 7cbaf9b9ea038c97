"""PostgreSQL: ``autumn_track_apply_batch``, the compare-and-write of several tracks of one customer.

Tracks of one customer that arrive while another of its tracks is being written wait in the process
(:mod:`reference_server.service.track_batches`) and are then computed one after another from the
cached subject and written together by this function: their header claims (with their answers),
the changed sources and every event, in one statement, after the same lock and fingerprint check
as ``autumn_track_apply`` (migration 0003).  All or nothing: a held or already claimed key, an
unknown customer or a changed subject rolls the whole statement back and returns NULL, and each
waiting track then takes the ordinary path on its own.

The DDL is written out here, so later changes elsewhere never change what this revision creates.

Revision ID: 0025_track_apply_batch
Revises: 0024_keyed_track_apply
"""

from __future__ import annotations

from alembic import op

revision = "0025_track_apply_batch"
down_revision = "0024_keyed_track_apply"
branch_labels = None
depends_on = None

APPLY_BATCH = """
CREATE OR REPLACE FUNCTION autumn_track_apply_batch(
    p_customer_pk bigint, p_features text[], p_expected text, p_updates json, p_events json,
    p_claims json
) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT * FROM json_to_recordset(p_claims) AS x(
        org bigint, env text, key text, hash text, now bigint, lock bigint, status integer, body text)
    LOOP
        IF NOT pg_try_advisory_xact_lock(c.lock) THEN
            RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'autumn_batch_declined';
        END IF;
        INSERT INTO idempotency_keys (org_pk, env, scope, key, created_at, request_hash,
                                      response_status, response_body)
        VALUES (c.org, c.env, 'header', c.key, c.now, c.hash, c.status, c.body)
        ON CONFLICT (org_pk, env, scope, key) DO NOTHING;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'autumn_batch_declined';
        END IF;
    END LOOP;
    PERFORM 1 FROM customers WHERE pk = p_customer_pk FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'autumn_batch_declined';
    END IF;
    -- A new statement, hence a new snapshot: it sees every write committed before the lock.
    IF autumn_subject_fingerprint(p_customer_pk, p_features) IS DISTINCT FROM p_expected THEN
        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'autumn_batch_declined';
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
      FROM json_to_recordset(p_events) AS v(
           id text, org bigint, env text, customer_id text, entity_id text, feature_id text,
           value float8, properties json, deductions json, "timestamp" bigint);
    RETURN autumn_subject_fingerprint(p_customer_pk, p_features);
EXCEPTION
    WHEN raise_exception THEN
        IF SQLERRM = 'autumn_batch_declined' THEN
            RETURN NULL;  -- the block's writes are rolled back with it
        END IF;
        RAISE;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(APPLY_BATCH)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS autumn_track_apply_batch(bigint, text[], text, json, json, json)")
