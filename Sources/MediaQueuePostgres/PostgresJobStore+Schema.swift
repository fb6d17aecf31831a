import Foundation
import Logging
import MediaQueueCore
import PostgresNIO

/// The schema and its migrations: each runs once, in order, in the transaction that records it.
extension PostgresJobStore {
    /// Migrations by version; a new one is appended, never edited once released.
    static let migrations: [String] = [
        """
        CREATE TABLE queues (
            ordinal BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            bucket TEXT NOT NULL,
            name TEXT NOT NULL,
            state TEXT NOT NULL,
            max_concurrent BIGINT NOT NULL,
            max_size BIGINT NOT NULL,
            category TEXT NOT NULL,
            notify_config TEXT NOT NULL,
            create_time BIGINT NOT NULL,
            update_time BIGINT NOT NULL,
            UNIQUE (bucket, name)
        );
        CREATE TABLE jobs (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            bucket TEXT NOT NULL,
            queue_id TEXT NOT NULL,
            tag TEXT NOT NULL,
            state TEXT NOT NULL,
            job_level BIGINT NOT NULL,
            input TEXT NOT NULL,
            operation TEXT NOT NULL,
            callback TEXT NOT NULL,
            creation_time BIGINT NOT NULL,
            start_time BIGINT,
            end_time BIGINT,
            progress BIGINT NOT NULL DEFAULT 0,
            code TEXT NOT NULL,
            message TEXT NOT NULL,
            media_result TEXT,
            media_info TEXT,
            lease_owner TEXT,
            lease_expires BIGINT,
            attempts BIGINT NOT NULL DEFAULT 0,
            cancel_requested BOOLEAN NOT NULL DEFAULT FALSE
        );
        -- The claims' order: per queue and state, highest level first, then submission.
        CREATE INDEX jobs_dispatch ON jobs (queue_id, state, job_level DESC, seq);
        CREATE INDEX jobs_bucket ON jobs (bucket, seq);
        CREATE INDEX jobs_cancel ON jobs (lease_owner) WHERE cancel_requested;
        CREATE TABLE idempotency_keys (
            key TEXT PRIMARY KEY,
            job_ids TEXT NOT NULL,
            created_at BIGINT NOT NULL
        );
        CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
        CREATE TABLE outbox (
            id TEXT PRIMARY KEY,
            job_id TEXT NOT NULL,
            bucket TEXT NOT NULL,
            kind TEXT NOT NULL,
            url TEXT,
            mq_mode TEXT,
            mq_name TEXT,
            mq_region TEXT,
            endpoint TEXT,
            routing_key TEXT NOT NULL,
            body BYTEA NOT NULL,
            content_type TEXT NOT NULL,
            attempts BIGINT NOT NULL DEFAULT 0,
            next_attempt BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',
            last_error TEXT,
            delivered_at BIGINT
        );
        -- The relays' read: pending rows of a kind by due time. Delivered rows leave the index.
        CREATE INDEX outbox_due ON outbox (kind, next_attempt, created_at) WHERE status = 'pending';
        CREATE INDEX outbox_dead ON outbox (created_at) WHERE status = 'dead';
        CREATE TABLE webhook_secrets (
            bucket TEXT PRIMARY KEY,
            secret TEXT NOT NULL,
            previous_secret TEXT,
            previous_until BIGINT,
            created_at BIGINT NOT NULL
        );
        -- One row that readiness probes rewrite: a write that fails when the database cannot write.
        CREATE TABLE readiness_probe (id BIGINT PRIMARY KEY, checked_at BIGINT NOT NULL);
        """,
        """
        -- Each queue's unfinished jobs (Submitted, Pause, Running), kept by the statements that
        -- change them: a submission checks MaxSize without counting the backlog.
        ALTER TABLE queues ADD COLUMN unfinished BIGINT NOT NULL DEFAULT 0;
        UPDATE queues SET unfinished = (
            SELECT COUNT(*) FROM jobs WHERE jobs.queue_id = queues.id AND jobs.state IN ('Submitted', 'Pause', 'Running')
        );
        """,
        claimFunction,
        """
        -- Buckets' templates and workflows, as CI's XML.
        CREATE TABLE definitions (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            bucket TEXT NOT NULL,
            name TEXT NOT NULL,
            label TEXT NOT NULL,
            body TEXT NOT NULL,
            refs TEXT NOT NULL,
            create_time BIGINT NOT NULL,
            update_time BIGINT NOT NULL
        );
        CREATE INDEX definitions_bucket ON definitions (bucket, kind, create_time);
        """,
        """
        -- Workflow runs: a row per run, its document in body; version guards updates; origin
        -- (an upload's arrival and the workflow) keeps a replayed arrival from starting it twice.
        CREATE TABLE workflow_runs (
            seq BIGSERIAL PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            bucket TEXT NOT NULL,
            workflow_id TEXT NOT NULL,
            state TEXT NOT NULL,
            object TEXT NOT NULL,
            origin TEXT UNIQUE,
            create_time BIGINT NOT NULL,
            version BIGINT NOT NULL,
            body TEXT NOT NULL
        );
        CREATE INDEX workflow_runs_list ON workflow_runs (bucket, workflow_id, seq);
        CREATE INDEX workflow_runs_running ON workflow_runs (seq) WHERE state = 'Running';
        -- Uploads whose runs may not exist yet (see Arrival).
        CREATE TABLE arrivals (
            id TEXT PRIMARY KEY,
            bucket TEXT NOT NULL,
            object TEXT NOT NULL,
            time BIGINT NOT NULL
        );
        CREATE INDEX arrivals_time ON arrivals (time);
        """,
        """
        -- The headers an upload came with, for the runs its arrival starts (CosHeader.stored).
        ALTER TABLE arrivals ADD COLUMN cos_headers TEXT NOT NULL DEFAULT '';
        """,
        // The claim's function as it is now (queues with nothing to claim are no longer locked).
        claimFunction,
    ]

    /// The claim's function (`claim`), created by migration 3 and replaced whole by later ones:
    /// it holds no data, so every database gets its current body from the last of them.
    static let claimFunction = """
        -- A claim in one call: PostgreSQL runs each statement of the function with a new
        -- snapshot, so the running count after the queue's lock sees every claim committed
        -- before it, and the queue's lock is held for one round trip instead of five.
        CREATE OR REPLACE FUNCTION mediaqueue_claim(p_owner TEXT, p_now BIGINT, p_until BIGINT, p_limit BIGINT)
        RETURNS TABLE (more_waiting BOOLEAN, claimed BIGINT[]) LANGUAGE plpgsql AS $$
        DECLARE
            q RECORD;
            v_max BIGINT;
            v_running BIGINT;
            v_free BIGINT;
            v_taken BIGINT[] := '{}';
            v_more BOOLEAN := FALSE;
            v_candidates BIGINT[];
        BEGIN
            FOR q IN SELECT id FROM queues WHERE state = 'Active' ORDER BY ordinal LOOP
                -- A queue with nothing to claim is not locked: every bucket has its queue-1, and
                -- locking them all held every submission and every other node's claim. (A job
                -- committed after this look is taken by the next claim.)
                IF NOT (EXISTS (SELECT 1 FROM jobs WHERE queue_id = q.id AND state = 'Submitted')
                    OR EXISTS (SELECT 1 FROM jobs WHERE queue_id = q.id AND state = 'Running' AND lease_expires <= p_now)) THEN
                    CONTINUE;
                END IF;
                IF cardinality(v_taken) >= p_limit THEN
                    v_more := TRUE;
                    CONTINUE;
                END IF;
                SELECT max_concurrent INTO v_max FROM queues WHERE id = q.id AND state = 'Active' FOR UPDATE;
                IF NOT FOUND THEN CONTINUE; END IF;
                SELECT COUNT(*) INTO v_running FROM jobs WHERE queue_id = q.id AND state = 'Running' AND lease_expires > p_now;
                v_free := LEAST(v_max - v_running, p_limit - cardinality(v_taken));
                IF v_free <= 0 THEN
                    v_more := TRUE;
                    CONTINUE;
                END IF;
                WITH waiting AS (
                    SELECT seq, job_level FROM jobs WHERE queue_id = q.id AND state = 'Submitted'
                    ORDER BY job_level DESC, seq LIMIT v_free + 1 FOR UPDATE SKIP LOCKED
                ), orphaned AS (
                    SELECT seq, job_level FROM jobs WHERE queue_id = q.id AND state = 'Running' AND lease_expires <= p_now
                    ORDER BY job_level DESC, seq LIMIT v_free + 1 FOR UPDATE SKIP LOCKED
                )
                SELECT array_agg(c.seq ORDER BY c.job_level DESC, c.seq) INTO v_candidates
                FROM (SELECT * FROM waiting UNION ALL SELECT * FROM orphaned) c;
                IF cardinality(v_candidates) > v_free THEN v_more := TRUE; END IF;
                v_taken := v_taken || COALESCE(v_candidates[1:v_free], '{}');
            END LOOP;
            IF cardinality(v_taken) > 0 THEN
                UPDATE jobs SET state = 'Running', start_time = COALESCE(start_time, p_now), lease_owner = p_owner,
                    lease_expires = p_until, attempts = attempts + 1
                WHERE seq = ANY(v_taken);
            END IF;
            RETURN QUERY SELECT v_more, v_taken;
        END
        $$;
        """

    /// PostgreSQL 13 (`server_version_num`).
    static let minimumServerVersion = 130_000

    /// Brings the schema up to date. Nodes starting at once take turns on an advisory lock, so
    /// each migration runs once.
    static func migrate(_ client: PostgresClient, logger: Logger) async throws {
        try await client.withConnection { connection in
            // Before 13 there is no `pg_current_xact_id_if_assigned()`, which every write
            // transaction reads (`openTransaction`).
            let version = try await connection.value("SELECT current_setting('server_version_num')::int", as: Int.self, logger: logger) ?? 0
            guard version >= minimumServerVersion else {
                throw CIError(.internalError, "MediaQueue needs PostgreSQL 13 or later; the server is version \(version / 10000)")
            }
            try await connection.query("BEGIN", logger: logger)
            do {
                // The lock's key: "mediaqueue" as eight bytes.
                try await connection.query("SELECT pg_advisory_xact_lock(7885348562455750757)", logger: logger)
                try await connection.query(
                    "CREATE TABLE IF NOT EXISTS mediaqueue_schema (version BIGINT NOT NULL, migrated_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                    logger: logger
                )
                var version = 0
                for try await (current) in try await connection.query("SELECT COALESCE(MAX(version), 0) FROM mediaqueue_schema", logger: logger)
                    .decode(Int.self) {
                    version = current
                }
                // A schema a newer MediaQueue migrated has columns and tables this one would not
                // keep up (a counter it does not update, a table it does not write): refused.
                guard version <= migrations.count else {
                    throw CIError(
                        .internalError,
                        "the database's schema is version \(version), migrated by a newer MediaQueue than this one (version \(migrations.count)); run that version"
                    )
                }
                for (index, migration) in migrations.enumerated() where index + 1 > version {
                    // One statement a query: the extended protocol takes no lists. (A function's
                    // body holds semicolons: such a migration is one statement.)
                    let statements = migration.contains("$$") ? [migration] : migration.components(separatedBy: ";\n")
                    for statement in statements where !statement.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await connection.query("INSERT INTO mediaqueue_schema (version) VALUES (\(index + 1))", logger: logger)
                }
            } catch {
                // As in `transaction`: not on a connection that is gone, where it could wait for ever.
                if !connection.isClosed { _ = try? await connection.query("ROLLBACK", logger: logger) }
                throw error
            }
            // No ROLLBACK after a failed COMMIT: the transaction is over either way.
            try await connection.query("COMMIT", logger: logger)
        }
    }
}
