import Foundation
import GRDB
public import MediaQueueCore
import MediaQueueXML

/// The callback outbox: due deliveries, the relays' leases, attempts, dead deliveries and redrive.
extension SQLiteJobStore {
    static func insertOutbox(_ entry: OutboxEntry, _ db: Database) throws {
        var kind = "url", url: String?, mode: String?, name: String?, region: String?
        switch entry.target {
        case .url(let target): url = target
        case .mq(let mqMode, let mqName, let mqRegion):
            kind = "mq"
            mode = mqMode.rawValue
            name = mqName
            region = mqRegion
        }
        var insert = DirectStatement(try db.cachedStatement(sql: """
            INSERT INTO outbox (id, job_id, bucket, kind, url, mq_mode, mq_name, mq_region, routing_key, body,
                content_type, attempts, next_attempt, created_at, endpoint)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """))
        insert.bind(entry.id)
        insert.bind(entry.jobID.rawValue)
        insert.bind(entry.bucket)
        insert.bind(kind)
        insert.bind(url)
        insert.bind(mode)
        insert.bind(name)
        insert.bind(region)
        insert.bind(entry.routingKey)
        insert.bind(entry.body)
        insert.bind(entry.contentType)
        insert.bind(entry.attempts)
        insert.bind(entry.nextAttempt.milliseconds)
        insert.bind(entry.createdAt.milliseconds)
        insert.bind(entry.endpoint)
        try insert.run(db)
    }

    /// The `kind` column of a channel's rows.
    static func kind(_ channel: NotifyConfig.Channel) -> String { channel == .url ? "url" : "mq" }

    /// Pending rows over `channel` due at `now` to endpoints `endpoints` admits, oldest first (the
    /// relays' read, on the `outbox_due` index).
    static func due(_ channel: NotifyConfig.Channel, now: Timestamp, limit: Int, endpoints: EndpointFilter, _ db: Database) throws -> [OutboxEntry] {
        guard endpoints != .all else {
            return try Row.fetchAll(
                db.cachedStatement(sql: "SELECT \(outboxColumns) FROM outbox WHERE status = 'pending' AND kind = ? AND next_attempt <= ? ORDER BY next_attempt, created_at LIMIT ?"),
                arguments: [kind(channel), now.milliseconds, limit]
            ).map(outboxEntry)
        }
        let (listed, condition) = switch endpoints {
        case .excluding(let excluded): (Array(excluded), "(endpoint IS NULL OR endpoint NOT IN (\(databaseQuestionMarks(count: excluded.count))))")
        case .only(let included): (Array(included), "endpoint IN (\(databaseQuestionMarks(count: included.count)))")
        }
        var arguments: StatementArguments = [kind(channel), now.milliseconds]
        arguments += StatementArguments(listed)
        arguments += [limit]
        return try Row.fetchAll(
            db,
            sql: """
                SELECT \(outboxColumns) FROM outbox WHERE status = 'pending' AND kind = ? AND next_attempt <= ?
                AND \(condition)
                ORDER BY next_attempt, created_at LIMIT ?
                """,
            arguments: arguments
        ).map(outboxEntry)
    }

    public func dueOutbox(_ channel: NotifyConfig.Channel, now: Timestamp, limit: Int) async throws -> [OutboxEntry] {
        try await dueOutbox(channel, now: now, limit: limit, endpoints: .all)
    }

    public func markDelivered(_ ids: [String], at: Timestamp) async throws {
        guard !ids.isEmpty else { return }
        try await transaction { db in
            // One cached statement executed per id: an `IN (…)` list changes the statement's text
            // with the batch size, so it was prepared anew for nearly every batch.
            let update = try db.cachedStatement(sql: "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = ? WHERE id = ?")
            for id in ids {
                var bound = DirectStatement(update)
                bound.bind(at.milliseconds)
                bound.bind(id)
                try bound.run(db)
            }
        }
    }

    public func markAttemptsFailed(_ attempts: [FailedAttempt]) async throws -> Set<String> {
        guard !attempts.isEmpty else { return [] }
        return try await transaction { db in
            let retry = try db.cachedStatement(sql: """
                UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt = ?
                WHERE id = ? AND status = 'pending' AND next_attempt <= ?
                """)
            let dead = try db.cachedStatement(
                sql: "UPDATE outbox SET attempts = attempts + 1, last_error = ?, status = 'dead' WHERE id = ? AND status = 'pending' AND next_attempt <= ?"
            )
            var recorded: Set<String> = []
            for attempt in attempts {
                var bound = DirectStatement(attempt.nextAttempt == nil ? dead : retry)
                bound.bind(attempt.error)
                if let next = attempt.nextAttempt { bound.bind(next.milliseconds) }
                bound.bind(attempt.id)
                bound.bind(attempt.leaseEnd.milliseconds)
                try bound.run(db)
                if db.changesCount == 1 { recorded.insert(attempt.id) }
            }
            return recorded
        }
    }

    public func deadOutbox(_ filter: DeliveryFilter, limit: Int) async throws -> [OutboxEntry] {
        try await read { db in
            let (conditions, arguments) = Self.conditions(filter)
            return try Row.fetchAll(
                db, sql: "SELECT \(Self.outboxColumns) FROM outbox WHERE status = 'dead'\(conditions) ORDER BY created_at LIMIT ?",
                arguments: arguments + [limit]
            ).map(Self.outboxEntry)
        }
    }

    public func redriveDead(_ filter: DeliveryFilter, now: Timestamp) async throws -> Int {
        try await transaction { db in
            let (conditions, arguments) = Self.conditions(filter)
            try db.execute(
                sql: "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt = ? WHERE status = 'dead'\(conditions)",
                arguments: [now.milliseconds] + arguments
            )
            return db.changesCount
        }
    }

    /// `filter` as SQL conditions on `outbox` (each starting with ` AND`), with their arguments.
    static func conditions(_ filter: DeliveryFilter) -> (String, StatementArguments) {
        var sql = ""
        var arguments = StatementArguments()
        if let bucket = filter.bucket {
            sql += " AND bucket = ?"
            arguments += [bucket]
        }
        if let queueID = filter.queueID {
            // One lookup per row through the jobs' unique id, not a list of the queue's jobs.
            sql += " AND EXISTS (SELECT 1 FROM jobs WHERE jobs.id = outbox.job_id AND jobs.queue_id = ?)"
            arguments += [queueID.rawValue]
        }
        if let endpoint = filter.endpoint {
            sql += " AND endpoint = ?"
            arguments += [endpoint]
        }
        if let from = filter.createdFrom {
            sql += " AND created_at >= ?"
            arguments += [from.milliseconds]
        }
        if let to = filter.createdTo {
            sql += " AND created_at <= ?"
            arguments += [to.milliseconds]
        }
        if let ids = filter.ids {
            sql += " AND id IN (\(Array(repeating: "?", count: ids.count).joined(separator: ",")))"
            arguments += StatementArguments(ids.sorted())
        }
        return (sql, arguments)
    }

    /// A job's deliveries are made when its end is recorded, moments after `endTime` (a batch's
    /// linger, the wait for a progress event in flight), and their ids grow with time: they are
    /// found by the primary key within two minutes of the job's end, without an index on
    /// `job_id`, which would cost every job an index write.
    public func deliveries(of job: Job) async throws -> [OutboxDelivery] {
        guard let end = job.endTime else { return [] }
        let window = Duration.seconds(120)
        let range = ["e" + timeOrderedHex32Floor(at: end - window), "e" + timeOrderedHex32Floor(at: end + window)]
        return try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT \(Self.outboxColumns), status, delivered_at FROM outbox WHERE id >= ? AND id < ? AND job_id = ? ORDER BY created_at, id",
                arguments: [range[0], range[1], job.id.rawValue]
            ).map { row in
                OutboxDelivery(
                    entry: Self.outboxEntry(row), status: OutboxDelivery.Status(rawValue: row[15]) ?? .pending,
                    deliveredAt: (row[16] as Int64?).map(Timestamp.init(milliseconds:))
                )
            }
        }
    }

    public func dueOutbox(_ channel: NotifyConfig.Channel, now: Timestamp, limit: Int, endpoints: EndpointFilter) async throws -> [OutboxEntry] {
        try await read { db in try Self.due(channel, now: now, limit: limit, endpoints: endpoints, db) }
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

    public func leaseOutbox(
        _ channel: NotifyConfig.Channel, now: Timestamp, until: Timestamp, limit: Int, endpoints: EndpointFilter
    ) async throws -> [OutboxEntry] {
        // Most polls find nothing due (for the endpoints they read): a read says so without
        // taking the write lock.
        let anyDue = try await read { db in
            guard endpoints == .all else { return !(try Self.due(channel, now: now, limit: 1, endpoints: endpoints, db)).isEmpty }
            return try Bool.fetchOne(
                db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM outbox WHERE status = 'pending' AND kind = ? AND next_attempt <= ?)"),
                arguments: [Self.kind(channel), now.milliseconds]
            ) ?? false
        }
        guard anyDue else { return [] }
        return try await transaction { db in
            let due = try Self.due(channel, now: now, limit: limit, endpoints: endpoints, db)
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
}
