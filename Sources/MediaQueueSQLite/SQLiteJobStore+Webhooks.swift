import GRDB
public import MediaQueueCore

/// Callback delivery: per-bucket signing secrets, endpoint-aware due lists, and the leases both
/// relays take on what they send.
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

    public func dueOutbox(_ channel: NotifyConfig.Channel, now: Timestamp, limit: Int, excludingEndpoints: Set<String>) async throws -> [OutboxEntry] {
        guard !excludingEndpoints.isEmpty else { return try await dueOutbox(channel, now: now, limit: limit) }
        let excluded = Array(excludingEndpoints)
        return try await read { db in
            var arguments: StatementArguments = [channel == .url ? "url" : "mq", now.milliseconds]
            arguments += StatementArguments(excluded)
            arguments += [limit]
            return try Row.fetchAll(
                db,
                sql: """
                    SELECT \(Self.outboxColumns) FROM outbox WHERE status = 'pending' AND kind = ? AND next_attempt <= ?
                    AND (endpoint IS NULL OR endpoint NOT IN (\(databaseQuestionMarks(count: excluded.count))))
                    ORDER BY next_attempt, created_at LIMIT ?
                    """,
                arguments: arguments
            ).map(Self.outboxEntry)
        }
    }

    public func deferOutbox(_ ids: [String], dueBy: Timestamp, until: Timestamp) async throws -> [String] {
        guard !ids.isEmpty else { return [] }
        return try await transaction { db in
            var moved: [String] = []
            for id in ids {
                try db.execute(
                    sql: "UPDATE outbox SET next_attempt = ? WHERE id = ? AND status = 'pending' AND next_attempt <= ?",
                    arguments: [until.milliseconds, id, dueBy.milliseconds]
                )
                if db.changesCount == 1 { moved.append(id) }
            }
            return moved
        }
    }

    public func leaseOutbox(_ channel: NotifyConfig.Channel, now: Timestamp, until: Timestamp, limit: Int) async throws -> [OutboxEntry] {
        try await transaction { db in
            let due = try Row.fetchAll(
                db.cachedStatement(sql: "SELECT \(Self.outboxColumns) FROM outbox WHERE status = 'pending' AND kind = ? AND next_attempt <= ? ORDER BY next_attempt, created_at LIMIT ?"),
                arguments: [channel == .url ? "url" : "mq", now.milliseconds, limit]
            ).map(Self.outboxEntry)
            let lease = try db.cachedStatement(sql: "UPDATE outbox SET next_attempt = ? WHERE id = ?")
            return try due.map { entry in
                var bound = DirectStatement(lease)
                bound.bind(until.milliseconds)
                bound.bind(entry.id)
                try bound.run(db)
                var taken = entry
                taken.nextAttempt = until
                return taken
            }
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
