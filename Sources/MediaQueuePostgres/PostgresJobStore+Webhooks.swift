public import MediaQueueCore
import PostgresNIO

/// HTTP callback signing: per-bucket secrets and their rotation.
extension PostgresJobStore {
    public func signingSecrets(bucket: String) async throws -> SigningSecrets {
        if let secrets = try await read({ connection in try await Self.secrets(connection, bucket: bucket, logger: logger) }) {
            return secrets
        }
        let now = time.now
        return try await transaction { connection in try await Self.ensureSecrets(connection, bucket: bucket, now: now, logger: logger) }
    }

    public func rotateSigningSecret(bucket: String, now: Timestamp, grace: Duration) async throws -> SigningSecrets {
        try await transaction { connection in
            let rotated = try await Self.ensureSecrets(connection, bucket: bucket, now: now, logger: logger).rotated(now: now, grace: grace)
            try await connection.run(
                """
                UPDATE webhook_secrets SET secret = \(rotated.current), previous_secret = \(rotated.previous),
                    previous_until = \(rotated.previousUntil?.milliseconds), created_at = \(now.milliseconds)
                WHERE bucket = \(bucket)
                """,
                logger: logger
            )
            return rotated
        }
    }

    /// The bucket's secrets, created if it has none; locked until the transaction ends.
    private static func ensureSecrets(_ connection: PostgresConnection, bucket: String, now: Timestamp, logger: Logger) async throws -> SigningSecrets {
        // Another node may have created it since a read: keep the first.
        try await connection.run(
            """
            INSERT INTO webhook_secrets (bucket, secret, created_at) VALUES (\(bucket), \(WebhookSecret.generate()), \(now.milliseconds))
            ON CONFLICT (bucket) DO NOTHING
            """,
            logger: logger
        )
        return try await secrets(connection, bucket: bucket, lock: true, logger: logger) ?? SigningSecrets(current: "")
    }

    private static func secrets(_ connection: PostgresConnection, bucket: String, lock: Bool = false, logger: Logger) async throws -> SigningSecrets? {
        let select: PostgresQuery = """
            SELECT secret, previous_secret, previous_until FROM webhook_secrets WHERE bucket = \(bucket) \(unescaped: lock ? "FOR UPDATE" : "")
            """
        guard let row = try await connection.row(select, logger: logger) else { return nil }
        var columns = Columns(row)
        let current: String = try columns.next()
        let previous: String? = try columns.next()
        let previousUntil: Int64? = try columns.next()
        return SigningSecrets(current: current, previous: previous, previousUntil: previousUntil.map(Timestamp.init(milliseconds:)))
    }
}
