import GRDB
public import MediaQueueCore
import MediaQueueXML

/// Workflow runs (schema v8): a row per run, its document in `body`.
extension SQLiteJobStore {
    static func migrateV8(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE workflow_runs (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                bucket TEXT NOT NULL,
                workflow_id TEXT NOT NULL,
                state TEXT NOT NULL,
                object TEXT NOT NULL,
                origin TEXT UNIQUE,
                create_time INTEGER NOT NULL,
                version INTEGER NOT NULL,
                body TEXT NOT NULL
            );
            CREATE INDEX workflow_runs_list ON workflow_runs (bucket, workflow_id, seq);
            CREATE INDEX workflow_runs_running ON workflow_runs (seq) WHERE state = 'Running';
            CREATE TABLE arrivals (
                id TEXT PRIMARY KEY,
                bucket TEXT NOT NULL,
                object TEXT NOT NULL,
                time INTEGER NOT NULL
            );
            CREATE INDEX arrivals_time ON arrivals (time);
            """)
    }

    public func createRun(_ run: WorkflowRun, jobs: [Job]) async throws -> WorkflowRun {
        let now = time.now
        let (stored, created) = try await transaction { db in
            if let origin = run.origin,
               let existing = try Row.fetchOne(db, sql: "SELECT seq, version, body FROM workflow_runs WHERE origin = ?", arguments: [origin]) {
                return (try Self.run(existing), [Job]())
            }
            let created = try Self.storeRunJobs(jobs, now: now, db)
            try db.execute(
                sql: """
                    INSERT INTO workflow_runs (id, bucket, workflow_id, state, object, origin, create_time, version, body)
                    VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)
                    """,
                arguments: [
                    run.id, run.bucket, run.workflowID, run.state.rawValue, run.object, run.origin, run.createTime.milliseconds, run.storedXML.xmlString(),
                ]
            )
            var stored = run
            stored.sequence = db.lastInsertedRowID
            return (stored, created)
        }
        recentJobs.insert(created)
        return stored
    }

    public func updateRun(_ run: WorkflowRun, jobs: [Job], outbox: [OutboxEntry]) async throws -> Bool {
        let now = time.now
        let (updated, created) = try await transaction { db in
            try db.execute(
                sql: "UPDATE workflow_runs SET state = ?, version = version + 1, body = ? WHERE id = ? AND version = ?",
                arguments: [run.state.rawValue, run.storedXML.xmlString(), run.id, run.version]
            )
            guard db.changesCount == 1 else { return (false, [Job]()) }
            let created = try Self.storeRunJobs(jobs, now: now, db)
            for entry in outbox { try Self.insertOutbox(entry, db) }
            return (true, created)
        }
        recentJobs.insert(created)
        return updated
    }

    public func recordArrival(_ arrival: Arrival) async throws {
        try await transaction { db in
            try db.execute(
                sql: "INSERT INTO arrivals (id, bucket, object, time, cos_headers) VALUES (?, ?, ?, ?, ?)",
                arguments: [arrival.id, arrival.bucket, arrival.key, arrival.time.milliseconds, CosHeader.stored(arrival.cosHeaders)]
            )
        }
    }

    public func removeArrival(id: String) async throws {
        try await transaction { db in try db.execute(sql: "DELETE FROM arrivals WHERE id = ?", arguments: [id]) }
    }

    public func arrivals(before cutoff: Timestamp, after: Arrival?, limit: Int) async throws -> [Arrival] {
        let (sql, arguments): (String, StatementArguments) = if let after {
            (
                "SELECT * FROM arrivals WHERE time < ? AND (time, id) > (?, ?) ORDER BY time, id LIMIT ?",
                [cutoff.milliseconds, after.time.milliseconds, after.id, limit]
            )
        } else {
            ("SELECT * FROM arrivals WHERE time < ? ORDER BY time, id LIMIT ?", [cutoff.milliseconds, limit])
        }
        return try await read { db in
            try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                Arrival(
                    id: row["id"], bucket: row["bucket"], key: row["object"], time: Timestamp(milliseconds: row["time"]),
                    cosHeaders: CosHeader.read(stored: row["cos_headers"])
                )
            }
        }
    }

    public func run(id: String) async throws -> WorkflowRun? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT seq, version, body FROM workflow_runs WHERE id = ?", arguments: [id]).map(Self.run)
        }
    }

    public func runs(_ query: RunQuery) async throws -> [WorkflowRun] {
        var sql = "SELECT seq, version, body FROM workflow_runs WHERE bucket = ?"
        var arguments: StatementArguments = [query.bucket]
        if let workflowID = query.workflowID {
            sql += " AND workflow_id = ?"
            _ = arguments.append(contentsOf: [workflowID])
        }
        if !query.states.isEmpty {
            sql += " AND state IN (\(query.states.map { _ in "?" }.joined(separator: ",")))"
            _ = arguments.append(contentsOf: StatementArguments(query.states.map(\.rawValue)))
        }
        if let object = query.object {
            sql += " AND object = ?"
            _ = arguments.append(contentsOf: [object])
        }
        if let from = query.createdFrom {
            sql += " AND create_time >= ?"
            _ = arguments.append(contentsOf: [from.milliseconds])
        }
        if let to = query.createdTo {
            sql += " AND create_time <= ?"
            _ = arguments.append(contentsOf: [to.milliseconds])
        }
        if let needle = query.storedTextNeedle {
            sql += " AND instr(body, ?) > 0"
            _ = arguments.append(contentsOf: [needle])
        }
        if let after = query.after {
            sql += query.newestFirst ? " AND seq < ?" : " AND seq > ?"
            _ = arguments.append(contentsOf: [after])
        }
        sql += " ORDER BY seq \(query.newestFirst ? "DESC" : "ASC") LIMIT ?"
        _ = arguments.append(contentsOf: [query.limit])
        let statement = sql
        let values = arguments
        return try await read { db in try Row.fetchAll(db, sql: statement, arguments: values).map(Self.run) }
    }

    public func runningRuns(after sequence: Int64, limit: Int) async throws -> [WorkflowRun] {
        try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT seq, version, body FROM workflow_runs WHERE state = 'Running' AND seq > ? ORDER BY seq LIMIT ?",
                arguments: [sequence, limit]
            ).map(Self.run)
        }
    }

    /// A run's jobs stored as one submission, in the caller's transaction; a refusal (a full
    /// queue) undoes the transaction.
    private static func storeRunJobs(_ jobs: [Job], now: Timestamp, _ db: Database) throws -> [Job] {
        guard !jobs.isEmpty else { return [] }
        let admitted = try admit([Submission(idempotencyKey: nil, jobs: jobs)], now: now, db)
        switch try insertCreated(admitted, claimed: [:], db).first {
        case .refused(let error)?: throw error
        case .created(let created)?: return created
        default: return []
        }
    }

    static func run(_ row: Row) throws -> WorkflowRun {
        try WorkflowRun(stored: try XMLDocumentParser.parse(row["body"] as String), version: row["version"], sequence: row["seq"])
    }
}
