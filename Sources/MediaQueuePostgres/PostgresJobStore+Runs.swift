public import MediaQueueCore
import MediaQueueXML
import PostgresNIO

/// Workflow runs: a row per run, its document in `body`.
extension PostgresJobStore {
    public func createRun(_ run: WorkflowRun, jobs: [Job]) async throws -> WorkflowRun {
        let now = time.now
        return try await transaction { connection in
            if let origin = run.origin {
                // Nodes replaying one arrival take turns on its origin; the second finds the first's run.
                try await connection.run("SELECT pg_advisory_xact_lock(hashtext(\(origin)))", logger: logger)
                if let existing = try await connection.row("SELECT seq, version, body FROM workflow_runs WHERE origin = \(origin)", logger: logger) {
                    return try Self.run(existing)
                }
            }
            try await Self.storeRunJobs(jobs, now: now, connection, logger: logger)
            let sequence = try await connection.value(
                """
                INSERT INTO workflow_runs (id, bucket, workflow_id, state, object, origin, create_time, version, body)
                VALUES (\(run.id), \(run.bucket), \(run.workflowID), \(run.state.rawValue), \(run.object), \(run.origin),
                    \(run.createTime.milliseconds), 0, \(run.storedXML.xmlString()))
                RETURNING seq
                """,
                as: Int64.self, logger: logger
            )
            var stored = run
            stored.sequence = sequence ?? 0
            return stored
        }
    }

    public func updateRun(_ run: WorkflowRun, jobs: [Job], outbox: [OutboxEntry]) async throws -> Bool {
        let now = time.now
        return try await transaction { connection in
            let updated = try await connection.value(
                """
                UPDATE workflow_runs SET state = \(run.state.rawValue), version = version + 1, body = \(run.storedXML.xmlString())
                WHERE id = \(run.id) AND version = \(run.version) RETURNING seq
                """,
                as: Int64.self, logger: logger
            )
            guard updated != nil else { return false }
            try await Self.storeRunJobs(jobs, now: now, connection, logger: logger)
            if !outbox.isEmpty { try await Self.insertOutbox(outbox, connection, logger: logger) }
            return true
        }
    }

    public func recordArrival(_ arrival: Arrival) async throws {
        try await transaction { connection in
            try await connection.run(
                """
                INSERT INTO arrivals (id, bucket, object, time, cos_headers)
                VALUES (\(arrival.id), \(arrival.bucket), \(arrival.key), \(arrival.time.milliseconds), \(CosHeader.stored(arrival.cosHeaders)))
                """,
                logger: logger
            )
        }
    }

    public func removeArrival(id: String) async throws {
        try await transaction { connection in try await connection.run("DELETE FROM arrivals WHERE id = \(id)", logger: logger) }
    }

    public func arrivals(before cutoff: Timestamp, after: Arrival?, limit: Int) async throws -> [Arrival] {
        // Without a page before, the first: before every arrival.
        let (time, id) = after.map { ($0.time.milliseconds, $0.id) } ?? (Int64.min, "")
        return try await read { connection in
            try await connection.rows(
                """
                SELECT id, bucket, object, time, cos_headers FROM arrivals
                WHERE time < \(cutoff.milliseconds) AND (time, id) > (\(time), \(id)) ORDER BY time, id LIMIT \(limit)
                """,
                logger: logger
            ).map { row in
                var columns = Columns(row)
                let id: String = try columns.next()
                let bucket: String = try columns.next()
                let key: String = try columns.next()
                let time: Int64 = try columns.next()
                let headers: String = try columns.next()
                return Arrival(id: id, bucket: bucket, key: key, time: Timestamp(milliseconds: time), cosHeaders: CosHeader.read(stored: headers))
            }
        }
    }

    public func run(id: String) async throws -> WorkflowRun? {
        try await read { connection in
            try await connection.row("SELECT seq, version, body FROM workflow_runs WHERE id = \(id)", logger: logger).map(Self.run)
        }
    }

    public func runs(_ query: RunQuery) async throws -> [WorkflowRun] {
        var sql = SQLBuilder("SELECT seq, version, body FROM workflow_runs")
        var conditions = ["bucket = \(sql.bind(query.bucket))"]
        if let workflowID = query.workflowID { conditions.append("workflow_id = \(sql.bind(workflowID))") }
        if !query.states.isEmpty { conditions.append("state = ANY(\(sql.bind(query.states.map(\.rawValue).sorted())))") }
        if let object = query.object { conditions.append("object = \(sql.bind(object))") }
        if let from = query.createdFrom { conditions.append("create_time >= \(sql.bind(from.milliseconds))") }
        if let to = query.createdTo { conditions.append("create_time <= \(sql.bind(to.milliseconds))") }
        if let needle = query.storedTextNeedle { conditions.append("strpos(body, \(sql.bind(needle))) > 0") }
        if let after = query.after { conditions.append("seq \(query.newestFirst ? "<" : ">") \(sql.bind(after))") }
        sql.append(" WHERE " + conditions.joined(separator: " AND "))
        sql.append(" ORDER BY seq \(query.newestFirst ? "DESC" : "ASC") LIMIT \(sql.bind(query.limit))")
        let statement = sql.query
        return try await read { connection in try await connection.rows(statement, logger: logger).map(Self.run) }
    }

    public func runningRuns(after sequence: Int64, limit: Int) async throws -> [WorkflowRun] {
        try await read { connection in
            try await connection.rows(
                "SELECT seq, version, body FROM workflow_runs WHERE state = 'Running' AND seq > \(sequence) ORDER BY seq LIMIT \(limit)",
                logger: logger
            ).map(Self.run)
        }
    }

    /// A run's jobs stored as one submission, in the caller's transaction; a refusal (a full
    /// queue) undoes the transaction.
    private static func storeRunJobs(_ jobs: [Job], now: Timestamp, _ connection: PostgresConnection, logger: Logger) async throws {
        guard !jobs.isEmpty else { return }
        if case .refused(let error)? = try await store([Submission(idempotencyKey: nil, jobs: jobs)], now: now, claiming: false, connection, logger: logger).first {
            throw error
        }
    }

    static func run(_ row: PostgresRow) throws -> WorkflowRun {
        var columns = Columns(row)
        let sequence: Int64 = try columns.next()
        let version: Int64 = try columns.next()
        let body: String = try columns.next()
        return try WorkflowRun(stored: try XMLDocumentParser.parse(body), version: Int(version), sequence: sequence)
    }
}
