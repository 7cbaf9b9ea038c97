"""PostgreSQL: ``autumn_track_apply_keyed``, a track's compare-and-write that also claims its
``Idempotency-Key`` and stores the answer, all in the one statement.

A keyed ``track`` (the SDK sends a key on every mutating call) took the locked path in a worker
thread, with the claim, the work and the stored response in one transaction of several round
trips.  This function does the same in one statement on the event loop's connection: it takes the
key's transaction-scoped advisory lock (held by a request still running, as
:func:`reference_server.store.idempotency.begin` takes it), inserts the claim with its response,
then runs ``autumn_track_apply`` (migration 0003).  NULL, with nothing written, when the key is held
or already claimed or the subject changed: the caller then runs the ordinary keyed path, which
replays a stored answer, refuses a duplicate or an in-flight key, and otherwise does the work.

The DDL is written out here, so later changes elsewhere never change what this revision creates.

Revision ID: 0024_keyed_track_apply
Revises: 0023_invoice_net_terms
"""

from __future__ import annotations

from alembic import op

revision = "0024_keyed_track_apply"
down_revision = "0023_invoice_net_terms"
branch_labels = None
depends_on = None

APPLY_KEYED = """
CREATE OR REPLACE FUNCTION autumn_track_apply_keyed(
    p_customer_pk bigint, p_features text[], p_expected text, p_updates json, p_event json,
    p_org bigint, p_env text, p_key text, p_hash text, p_now bigint, p_lock bigint,
    p_status integer, p_body text
) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    claimed bigint;
    fp text;
BEGIN
    IF NOT pg_try_advisory_xact_lock(p_lock) THEN
        RETURN NULL;  -- a request with this key is still running
    END IF;
    INSERT INTO idempotency_keys (org_pk, env, scope, key, created_at, request_hash,
                                  response_status, response_body)
    VALUES (p_org, p_env, 'header', p_key, p_now, p_hash, p_status, p_body)
    ON CONFLICT (org_pk, env, scope, key) DO NOTHING
    RETURNING pk INTO claimed;
    IF claimed IS NULL THEN
        RETURN NULL;  -- claimed before (a replay, a duplicate or an expired claim)
    END IF;
    fp := autumn_track_apply(p_customer_pk, p_features, p_expected, p_updates, p_event);
    IF fp IS NULL THEN
        DELETE FROM idempotency_keys WHERE pk = claimed;
    END IF;
    RETURN fp;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(APPLY_KEYED)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "DROP FUNCTION IF EXISTS autumn_track_apply_keyed("
        "bigint, text[], text, json, json, bigint, text, text, text, bigint, bigint, integer, text)"
    )
