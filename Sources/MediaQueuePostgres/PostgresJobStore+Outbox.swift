import Foundation
public import MediaQueueCore
import NIOCore
import PostgresNIO

/// The callback outbox: due deliveries, the relays' leases, attempts, dead deliveries and redrive.
extension PostgresJobStore {
    /// Inserts `entries` in one statement.
    static func insertOutbox(_ entries: [OutboxEntry], _ connection: PostgresConnection, logger: Logger) async throws {
        guard !entries.isEmpty else { return }
        var kinds: [String] = [], urls: [String] = [], modes: [String] = [], names: [String] = [], regions: [String] = []
        for entry in entries {
            switch entry.target {
            case .url(let url):
                kinds.append("url"); urls.append(url); modes.append(""); names.append(""); regions.append("")
            case .mq(let mode, let name, let region):
                kinds.append("mq"); urls.append(""); modes.append(mode.rawValue); names.append(name); regions.append(region)
            }
        }
        // Absent parts travel as '' (arrays of this driver hold no NULL).
        let insert: PostgresQuery = """
            INSERT INTO outbox (id, job_id, bucket, kind, url, mq_mode, mq_name, mq_region, endpoint, routing_key, body,
                content_type, attempts, next_attempt, created_at)
            SELECT id, job_id, bucket, kind, NULLIF(url, ''), NULLIF(mq_mode, ''), NULLIF(mq_name, ''), NULLIF(mq_region, ''),
                endpoint, routing_key, body, content_type, attempts, next_attempt, created_at
            FROM unnest(
                \(entries.map(\.id))::text[], \(entries.map(\.jobID.rawValue))::text[], \(entries.map(\.bucket))::text[],
                \(kinds)::text[], \(urls)::text[], \(modes)::text[], \(names)::text[], \(regions)::text[],
                \(entries.map(\.endpoint))::text[], \(entries.map(\.routingKey))::text[],
                \(entries.map { ByteBuffer(bytes: $0.body) })::bytea[], \(entries.map(\.contentType))::text[],
                \(entries.map { Int64($0.attempts) })::bigint[], \(entries.map(\.nextAttempt.milliseconds))::bigint[],
                \(entries.map(\.createdAt.milliseconds))::bigint[]
            ) AS o(id, job_id, bucket, kind, url, mq_mode, mq_name, mq_region, endpoint, routing_key, body, content_type,
                attempts, next_attempt, created_at)
            """
        try await connection.run(insert, logger: logger)
    }

    public func dueOutbox(_ channel: NotifyConfig.Channel, now: Timestamp, limit: Int) async throws -> [OutboxEntry] {
        try await dueOutbox(channel, now: now, limit: limit, endpoints: .all)
    }

    public func dueOutbox(_ channel: NotifyConfig.Channel, now: Timestamp, limit: Int, endpoints: EndpointFilter) async throws -> [OutboxEntry] {
        let (listed, condition) = Self.endpointCondition(endpoints)
        let select: PostgresQuery = """
            SELECT \(unescaped: Self.outboxColumns) FROM outbox
            WHERE status = 'pending' AND kind = \(Self.kind(channel)) AND next_attempt <= \(now.milliseconds)
                AND (\(unescaped: condition) (endpoint = ANY(\(listed)::text[])))
            ORDER BY next_attempt, created_at LIMIT \(limit)
            """
        return try await read { connection in try await connection.rows(select, logger: logger).map(Self.outboxEntry) }
    }

    /// The endpoints `filter` lists, and what goes before `(endpoint = ANY(listed))` for a row to
    /// pass it.
    private static func endpointCondition(_ filter: EndpointFilter) -> (listed: [String], condition: String) {
        switch filter {
        case .excluding(let excluded): (excluded.sorted(), "endpoint IS NULL OR NOT")
        case .only(let included): (included.sorted(), "")
        }
    }

    public func markDelivered(_ ids: [String], at: Timestamp) async throws {
        guard !ids.isEmpty else { return }
        try await transaction { connection in
            try await connection.run(
                "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = \(at.milliseconds) WHERE id = ANY(\(ids))",
                logger: logger
            )
        }
    }

    /// One statement for all of them; a next attempt of -1 stands for none (dead).
    public func markAttemptsFailed(_ attempts: [FailedAttempt]) async throws -> Set<String> {
        guard !attempts.isEmpty else { return [] }
        let update: PostgresQuery = """
            UPDATE outbox SET attempts = outbox.attempts + 1, last_error = failed.error,
                next_attempt = CASE WHEN failed.next_attempt < 0 THEN outbox.next_attempt ELSE failed.next_attempt END,
                status = CASE WHEN failed.next_attempt < 0 THEN 'dead' ELSE outbox.status END
            FROM unnest(
                \(attempts.map(\.id))::text[], \(attempts.map(\.error))::text[],
                \(attempts.map { $0.nextAttempt?.milliseconds ?? -1 })::bigint[], \(attempts.map(\.leaseEnd.milliseconds))::bigint[]
            ) AS failed(id, error, next_attempt, lease_end)
            WHERE outbox.id = failed.id AND outbox.status = 'pending' AND outbox.next_attempt <= failed.lease_end
            RETURNING outbox.id
            """
        return try await transaction { connection in
            Set(try await connection.rows(update, logger: logger).map { try $0.decode(String.self) })
        }
    }

    public func deadOutbox(_ filter: DeliveryFilter, limit: Int) async throws -> [OutboxEntry] {
        var sql = SQLBuilder("SELECT \(Self.outboxColumns) FROM outbox WHERE status = 'dead'")
        Self.append(filter, to: &sql)
        sql.append(" ORDER BY created_at LIMIT \(sql.bind(limit))")
        let select = sql.query
        return try await read { connection in try await connection.rows(select, logger: logger).map(Self.outboxEntry) }
    }

    public func redriveDead(_ filter: DeliveryFilter, now: Timestamp) async throws -> Int {
        var sql = SQLBuilder()
        sql.append("WITH redriven AS (UPDATE outbox SET status = 'pending', attempts = 0, next_attempt = \(sql.bind(now.milliseconds))")
        sql.append(" WHERE status = 'dead'")
        Self.append(filter, to: &sql)
        sql.append(" RETURNING 1) SELECT COUNT(*) FROM redriven")
        let update = sql.query
        return try await transaction { connection in try await connection.value(update, as: Int.self, logger: logger) ?? 0 }
    }

    /// Appends `filter` as conditions on `outbox`, each starting with ` AND`.
    static func append(_ filter: DeliveryFilter, to sql: inout SQLBuilder) {
        if let bucket = filter.bucket { sql.append(" AND bucket = \(sql.bind(bucket))") }
        if let queueID = filter.queueID {
            sql.append(" AND EXISTS (SELECT 1 FROM jobs WHERE jobs.id = outbox.job_id AND jobs.queue_id = \(sql.bind(queueID.rawValue)))")
        }
        if let endpoint = filter.endpoint { sql.append(" AND endpoint = \(sql.bind(endpoint))") }
        if let from = filter.createdFrom { sql.append(" AND created_at >= \(sql.bind(from.milliseconds))") }
        if let to = filter.createdTo { sql.append(" AND created_at <= \(sql.bind(to.milliseconds))") }
        if let ids = filter.ids { sql.append(" AND id = ANY(\(sql.bind(ids.sorted())))") }
    }

    /// A job's deliveries are made moments after its end and their ids grow with time: they are
    /// found by the primary key within two minutes of the job's end, without an index on `job_id`.
    public func deliveries(of job: Job) async throws -> [OutboxDelivery] {
        guard let end = job.endTime else { return [] }
        let window = Duration.seconds(120)
        let low = "e" + timeOrderedHex32Floor(at: end - window), high = "e" + timeOrderedHex32Floor(at: end + window)
        let select: PostgresQuery = """
            SELECT \(unescaped: Self.outboxColumns), status, delivered_at FROM outbox
            WHERE id >= \(low) AND id < \(high) AND job_id = \(job.id.rawValue) ORDER BY created_at, id
            """
        return try await read { connection in
            try await connection.rows(select, logger: logger).map { row in
                var columns = Columns(row)
                let entry = try Self.outboxEntry(&columns)
                let status: String = try columns.next()
                let deliveredAt: Int64? = try columns.next()
                return OutboxDelivery(
                    entry: entry, status: OutboxDelivery.Status(rawValue: status) ?? .pending,
                    deliveredAt: deliveredAt.map(Timestamp.init(milliseconds:))
                )
            }
        }
    }

    public func deferOutbox(_ ids: [String], dueBy: Timestamp, until: Timestamp) async throws -> [String] {
        guard !ids.isEmpty else { return [] }
        let moved = try await transaction { connection in
            let update: PostgresQuery = """
                UPDATE outbox SET next_attempt = \(until.milliseconds)
                WHERE id = ANY(\(ids)) AND status = 'pending' AND next_attempt <= \(dueBy.milliseconds) RETURNING id
                """
            return Set(try await connection.rows(update, logger: logger).map { row in
                var columns = Columns(row)
                return try columns.next(String.self)
            })
        }
        return ids.filter(moved.contains)
    }

    /// One statement: the due rows are locked (`SKIP LOCKED`, so relays on several nodes each
    /// take different ones) and their next attempt moved to the lease's end.
    public func leaseOutbox(
        _ channel: NotifyConfig.Channel, now: Timestamp, until: Timestamp, limit: Int, endpoints: EndpointFilter
    ) async throws -> [OutboxEntry] {
        let columns = Self.outboxColumns.split(separator: ",").map { "outbox." + $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        let (listed, condition) = Self.endpointCondition(endpoints)
        let lease: PostgresQuery = """
            WITH due AS (
                SELECT id, next_attempt AS was_due FROM outbox
                WHERE status = 'pending' AND kind = \(Self.kind(channel)) AND next_attempt <= \(now.milliseconds)
                    AND (\(unescaped: condition) (endpoint = ANY(\(listed)::text[])))
                ORDER BY next_attempt, created_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
            )
            UPDATE outbox SET next_attempt = \(until.milliseconds) FROM due WHERE outbox.id = due.id
            RETURNING \(unescaped: columns.joined(separator: ", ")), due.was_due
            """
        let leased = try await transaction { connection in
            try await connection.rows(lease, logger: logger).map { row in
                var columns = Columns(row)
                let entry = try Self.outboxEntry(&columns)
                return (entry: entry, wasDue: try columns.next(Int64.self))
            }
        }
        return leased.sorted { ($0.wasDue, $0.entry.createdAt.milliseconds) < ($1.wasDue, $1.entry.createdAt.milliseconds) }.map(\.entry)
    }
}
