public import MediaQueueCore
import MediaQueueXML
import PostgresNIO

/// Submissions (with idempotency keys), reading and listing jobs, progress and cancel.
extension PostgresJobStore {
    public func submit(_ submissions: [Submission]) async throws -> [SubmissionOutcome] {
        let now = time.now
        return try await transaction { connection in try await Self.store(submissions, now: now, claiming: false, connection, logger: logger) }
    }

    public func submit(_ submissions: [Submission], thenClaim claim: ClaimRequest) async throws -> (outcomes: [SubmissionOutcome], claim: ClaimResult) {
        let now = time.now
        return try await transaction { connection in
            let outcomes = try await Self.store(submissions, now: now, claiming: true, connection, logger: logger)
            return (outcomes, try await Self.claim(claim, connection, logger: logger))
        }
    }

    /// Stores the submissions' jobs (see `submit`) in the caller's transaction, in a few
    /// statements whatever their number: their queues with their unfinished counts (locked, so
    /// that `MaxSize` holds across nodes), the keys seen before, then one insert of every job
    /// (which counts them into their queues) and one of every new key. `claiming`: the
    /// transaction claims afterwards (`lockQueues`).
    static func store(
        _ submissions: [Submission], now: Timestamp, claiming: Bool, _ connection: PostgresConnection, logger: Logger
    ) async throws -> [SubmissionOutcome] {
        let queueIDs = Array(Set(submissions.flatMap { $0.jobs.map(\.queueID.rawValue) }))
        var queues: [QueueID: (paused: Bool, maxSize: Int, unfinished: Int)] = [:]
        for row in try await lockQueues(queueIDs, claiming: claiming, connection, logger: logger) where queueIDs.contains(row.id) {
            queues[QueueID(rawValue: row.id)] = (row.state == MediaQueue.State.paused.rawValue, row.maxSize, row.unfinished)
        }
        var seenKeys: [String: [JobID]] = [:]
        let keys = submissions.compactMap(\.idempotencyKey)
        if !keys.isEmpty {
            for row in try await connection.rows("SELECT key, job_ids FROM idempotency_keys WHERE key = ANY(\(keys))", logger: logger) {
                var columns = Columns(row)
                let key: String = try columns.next()
                let ids: String = try columns.next()
                seenKeys[key] = JobID.split(ids)
            }
        }

        var outcomes: [SubmissionOutcome] = []
        var accepted: [Job] = []
        var newKeys: [(key: String, ids: [JobID])] = []
        submissionLoop: for submission in submissions {
            if let key = submission.idempotencyKey, let ids = seenKeys[key] {
                outcomes.append(.duplicate(ids))
                continue
            }
            let perQueue = submission.jobsPerQueue
            for (queueID, count) in perQueue {
                guard let queue = queues[queueID] else {
                    outcomes.append(.refused(CIError(.noSuchQueue, "queue \(queueID) does not exist", element: "QueueId")))
                    continue submissionLoop
                }
                if queue.unfinished + count > queue.maxSize {
                    outcomes.append(.refused(CIError(
                        .queueFull, "queue \(queueID) already holds \(queue.unfinished) unfinished jobs (MaxSize \(queue.maxSize))",
                        element: "QueueId"
                    )))
                    continue submissionLoop
                }
            }
            let jobs = submission.jobs.map { job in
                var stored = job
                stored.state = queues[job.queueID]?.paused == true ? .pause : .submitted
                return stored
            }
            for (queueID, count) in perQueue { queues[queueID]?.unfinished += count }
            if let key = submission.idempotencyKey {
                seenKeys[key] = jobs.map(\.id)
                newKeys.append((key, jobs.map(\.id)))
            }
            outcomes.append(.created(jobs))
            accepted.append(contentsOf: jobs)
        }
        guard !accepted.isEmpty else { return outcomes }

        let sequences = try await insert(accepted, connection, logger: logger)
        if !newKeys.isEmpty {
            let insertKeys: PostgresQuery = """
                INSERT INTO idempotency_keys (key, job_ids, created_at)
                SELECT key, job_ids, \(now.milliseconds) FROM unnest(\(newKeys.map(\.key))::text[], \(newKeys.map { JobID.joined($0.ids) })::text[]) AS k(key, job_ids)
                """
            try await connection.run(insertKeys, logger: logger)
        }
        return outcomes.map { outcome in
            guard case .created(let jobs) = outcome else { return outcome }
            return .created(jobs.map { job in
                var stored = job
                stored.sequence = sequences[job.id] ?? 0
                return stored
            })
        }
    }

    /// Inserts `jobs` in one statement, their sequence numbers in the order given, and counts them
    /// into their queues' unfinished jobs; returns the sequence numbers.
    static func insert(_ jobs: [Job], _ connection: PostgresConnection, logger: Logger) async throws -> [JobID: Int64] {
        // Times that are nil travel as -1 (arrays of this driver hold no NULL).
        let insert: PostgresQuery = """
            WITH inserted AS (
            INSERT INTO jobs (id, bucket, queue_id, tag, state, job_level, input, operation, callback, creation_time,
                start_time, end_time, progress, code, message)
            SELECT id, bucket, queue_id, tag, state, job_level, input, operation, callback, creation_time,
                NULLIF(start_time, -1), NULLIF(end_time, -1), progress, code, message
            FROM unnest(
                \(jobs.map(\.id.rawValue))::text[], \(jobs.map(\.bucket))::text[], \(jobs.map(\.queueID.rawValue))::text[],
                \(jobs.map(\.tag))::text[], \(jobs.map(\.state.rawValue))::text[], \(jobs.map { Int64($0.jobLevel) })::bigint[],
                \(jobs.map { $0.input.xmlString() })::text[], \(jobs.map { $0.operation.xmlString() })::text[],
                \(jobs.map { $0.callback.request.xmlString() })::text[], \(jobs.map(\.creationTime.milliseconds))::bigint[],
                \(jobs.map { $0.startTime?.milliseconds ?? -1 })::bigint[], \(jobs.map { $0.endTime?.milliseconds ?? -1 })::bigint[],
                \(jobs.map { Int64($0.progress) })::bigint[], \(jobs.map(\.code))::text[], \(jobs.map(\.message))::text[]
            ) WITH ORDINALITY AS j(id, bucket, queue_id, tag, state, job_level, input, operation, callback, creation_time,
                start_time, end_time, progress, code, message, position)
            ORDER BY position
            RETURNING id, seq, queue_id
            ), counted AS (
                UPDATE queues SET unfinished = queues.unfinished + added.jobs
                FROM (SELECT queue_id, COUNT(*) AS jobs FROM inserted GROUP BY queue_id) AS added WHERE queues.id = added.queue_id
            )
            SELECT id, seq FROM inserted
            """
        var sequences: [JobID: Int64] = [:]
        for row in try await connection.rows(insert, logger: logger) {
            var columns = Columns(row)
            let id = JobID(rawValue: try columns.next(String.self))
            sequences[id] = try columns.next(Int64.self)
        }
        return sequences
    }

    public func job(id: JobID) async throws -> Job? {
        try await read { connection in
            try await connection.row("SELECT \(unescaped: Self.jobColumns) FROM jobs WHERE id = \(id.rawValue)", logger: logger).map(Self.job)
        }
    }

    public func updateProgress(_ id: JobID, progress: Int) async throws {
        try await transaction { connection in
            try await connection.run("UPDATE jobs SET progress = \(progress) WHERE id = \(id.rawValue) AND state = 'Running'", logger: logger)
        }
    }

    public func cancel(_ id: JobID, now: Timestamp) async throws -> CancelOutcome {
        try await transaction { connection in
            // Its queue first, as every transaction takes a queue and its jobs: a pause or resume
            // of the queue, which changes its waiting jobs, and this one would otherwise each
            // wait for the other's lock. (A job's queue never changes.)
            let lockQueue: PostgresQuery = "SELECT 1 FROM queues WHERE id = (SELECT queue_id FROM jobs WHERE id = \(id.rawValue)) FOR UPDATE"
            _ = try await connection.row(lockQueue, logger: logger)
            // Locked, so that a claim taking it meanwhile is seen: the job is then Running.
            let select: PostgresQuery = "SELECT \(unescaped: Self.jobColumns) FROM jobs WHERE id = \(id.rawValue) FOR UPDATE"
            guard let row = try await connection.row(select, logger: logger) else {
                throw CIError(.noSuchJob, "job \(id) does not exist")
            }
            var job = try Self.job(row)
            switch job.state {
            case .submitted, .pause:
                try await connection.run("UPDATE jobs SET state = 'Cancel', end_time = \(now.milliseconds) WHERE id = \(id.rawValue)", logger: logger)
                try await connection.run("UPDATE queues SET unfinished = unfinished - 1 WHERE id = \(job.queueID.rawValue)", logger: logger)
                job.state = .cancel
                job.endTime = now
                return .cancelled(job)
            case .running:
                try await connection.run("UPDATE jobs SET cancel_requested = TRUE WHERE id = \(id.rawValue)", logger: logger)
                job.cancelRequested = true
                return .stopping(job)
            case .cancel:
                return .alreadyCancelled(job)
            case .success, .failed:
                throw CIError(.invalidJobState, "job \(id) has already ended as \(job.state.rawValue)")
            }
        }
    }

    public func cancelRequests(owner: String) async throws -> [JobID] {
        try await read { connection in
            let select: PostgresQuery = "SELECT id FROM jobs WHERE lease_owner = \(owner) AND state = 'Running' AND cancel_requested"
            return try await connection.rows(select, logger: logger).map { row in
                var columns = Columns(row)
                return JobID(rawValue: try columns.next())
            }
        }
    }

    public func jobs(_ query: JobQuery) async throws -> [Job] {
        var sql = SQLBuilder("SELECT \(Self.jobColumns) FROM jobs")
        var conditions: [String] = []
        if let bucket = query.bucket { conditions.append("bucket = \(sql.bind(bucket))") }
        if let queueID = query.queueID { conditions.append("queue_id = \(sql.bind(queueID.rawValue))") }
        if let tag = query.tag { conditions.append("tag = \(sql.bind(tag))") }
        if !query.states.isEmpty { conditions.append("state = ANY(\(sql.bind(query.states.map(\.rawValue).sorted())))") }
        if let from = query.createdFrom { conditions.append("creation_time >= \(sql.bind(from.milliseconds))") }
        if let to = query.createdTo { conditions.append("creation_time <= \(sql.bind(to.milliseconds))") }
        let needles = query.storedTextNeedles
        if let needle = needles.operation { conditions.append("strpos(operation, \(sql.bind(needle))) > 0") }
        if let needle = needles.input { conditions.append("strpos(input, \(sql.bind(needle))) > 0") }
        if let after = query.after { conditions.append("seq \(query.newestFirst ? "<" : ">") \(sql.bind(after))") }
        if !conditions.isEmpty { sql.append(" WHERE " + conditions.joined(separator: " AND ")) }
        sql.append(" ORDER BY seq \(query.newestFirst ? "DESC" : "ASC") LIMIT \(sql.bind(query.limit))")
        let statement = sql.query
        return try await read { connection in try await connection.rows(statement, logger: logger).map(Self.job) }
    }

    public func jobIDs(idempotencyKey key: String) async throws -> [JobID]? {
        try await read { connection in
            guard let row = try await connection.row("SELECT job_ids FROM idempotency_keys WHERE key = \(key)", logger: logger) else { return nil }
            var columns = Columns(row)
            let ids: String = try columns.next()
            return JobID.split(ids)
        }
    }

    public func purgeIdempotencyKeys(before cutoff: Timestamp) async throws {
        try await transaction { connection in
            try await connection.run("DELETE FROM idempotency_keys WHERE created_at < \(cutoff.milliseconds)", logger: logger)
        }
    }

    /// A real write (an empty transaction succeeds where writes fail).
    public func checkWritable() async throws {
        let now = time.now
        try await transaction { connection in
            try await connection.run(
                """
                INSERT INTO readiness_probe (id, checked_at) VALUES (1, \(now.milliseconds))
                ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at
                """,
                logger: logger
            )
        }
    }
}
