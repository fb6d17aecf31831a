import GRDB
import MediaQueueCore

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

    public func webhookSecret(bucket: String) async throws -> String {
        let now = time.now
        if let secret = try await read({ db in
            try String.fetchOne(db, sql: "SELECT secret FROM webhook_secrets WHERE bucket = ?", arguments: [bucket])
        }) {
            return secret
        }
        return try await transaction { db in
            // Another process may have created it since the read: keep the first.
            try db.execute(
                sql: "INSERT OR IGNORE INTO webhook_secrets (bucket, secret, created_at) VALUES (?, ?, ?)",
                arguments: [bucket, WebhookSecret.generate(), now.milliseconds]
            )
            return try String.fetchOne(db, sql: "SELECT secret FROM webhook_secrets WHERE bucket = ?", arguments: [bucket]) ?? ""
        }
    }
}
