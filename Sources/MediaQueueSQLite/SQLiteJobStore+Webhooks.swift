import GRDB
public import MediaQueueCore

/// HTTP callback signing: per-bucket secrets, and schema v2 (secrets and the outbox's endpoint).
extension SQLiteJobStore {
    /// Schema v2: `webhook_secrets`, and the outbox's `endpoint` (`host:port`), filled in for
    /// rows written before it existed.
    static func migrateV2(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE webhook_secrets (
                bucket TEXT PRIMARY KEY,
                secret TEXT NOT NULL,
                created_at INTEGER NOT NULL
            );
            ALTER TABLE outbox ADD COLUMN endpoint TEXT;
            """)
        let rows = try Row.fetchAll(db, sql: "SELECT id, kind, url, mq_region FROM outbox")
        for row in rows {
            let endpoint = (row["kind"] as String) == "url"
                ? CallbackEndpoint.of(url: row["url"] ?? "")
                : "mq:" + ((row["mq_region"] as String?) ?? "")
            try db.execute(sql: "UPDATE outbox SET endpoint = ? WHERE id = ?", arguments: [endpoint, row["id"] as String])
        }
    }

    /// Schema v5: the secret a rotation replaced, and the end of its grace period.
    static func migrateV5(_ db: Database) throws {
        try db.execute(sql: """
            ALTER TABLE webhook_secrets ADD COLUMN previous_secret TEXT;
            ALTER TABLE webhook_secrets ADD COLUMN previous_until INTEGER;
            """)
    }

    public func signingSecrets(bucket: String) async throws -> SigningSecrets {
        if let secrets = try await read({ db in try Self.secrets(db, bucket: bucket) }) {
            return secrets
        }
        let now = time.now
        return try await transaction { db in try Self.ensureSecrets(db, bucket: bucket, now: now) }
    }

    public func rotateSigningSecret(bucket: String, now: Timestamp, grace: Duration) async throws -> SigningSecrets {
        try await transaction { db in
            let rotated = try Self.ensureSecrets(db, bucket: bucket, now: now).rotated(now: now, grace: grace)
            try db.execute(
                sql: "UPDATE webhook_secrets SET secret = ?, previous_secret = ?, previous_until = ?, created_at = ? WHERE bucket = ?",
                arguments: [rotated.current, rotated.previous, rotated.previousUntil?.milliseconds, now.milliseconds, bucket]
            )
            return rotated
        }
    }

    private static func ensureSecrets(_ db: Database, bucket: String, now: Timestamp) throws -> SigningSecrets {
        // Another process may have created it since a read: keep the first.
        try db.execute(
            sql: "INSERT OR IGNORE INTO webhook_secrets (bucket, secret, created_at) VALUES (?, ?, ?)",
            arguments: [bucket, WebhookSecret.generate(), now.milliseconds]
        )
        return try secrets(db, bucket: bucket) ?? SigningSecrets(current: "")
    }

    private static func secrets(_ db: Database, bucket: String) throws -> SigningSecrets? {
        let sql = "SELECT secret, previous_secret, previous_until FROM webhook_secrets WHERE bucket = ?"
        guard let row = try Row.fetchOne(db, sql: sql, arguments: [bucket]) else { return nil }
        return SigningSecrets(
            current: row["secret"], previous: row["previous_secret"],
            previousUntil: (row["previous_until"] as Int64?).map { Timestamp(milliseconds: $0) }
        )
    }
}
