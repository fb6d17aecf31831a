import Foundation
import GRDB
public import MediaQueueCore
import MediaQueueXML

extension SQLiteJobStore {
    /// Runs `body` in an IMMEDIATE transaction: it takes the write lock up front, so two
    /// processes never deadlock upgrading a read to a write (SQLite would answer BUSY at once).
    func transaction<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await pool.writeWithoutTransaction { db in
            var result: T?
            try db.inTransaction(.immediate) {
                result = try body(db)
                return .commit
            }
            return result!
        }
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await pool.read(body)
    }
}

extension SQLiteJobStore {
    // MARK: Queues

    public func ensureDefaultQueue(bucket: String, template: MediaQueue) async throws -> MediaQueue {
        try await transaction { db in
            if let row = try Row.fetchOne(db, sql: "SELECT * FROM queues WHERE bucket = ? AND name = ?", arguments: [bucket, MediaQueue.defaultName]) {
                return try Self.queue(row)
            }
            var queue = template
            queue.bucket = bucket
            queue.name = MediaQueue.defaultName
            try Self.insertQueue(queue, db)
            return queue
        }
    }

    public func createQueue(_ queue: MediaQueue) async throws {
        try await transaction { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM queues WHERE bucket = ? AND name = ?", arguments: [queue.bucket, queue.name]) == true {
                throw CIError(.invalidArgument, "Name: the bucket already has a queue named '\(queue.name)'", element: "Name")
            }
            try Self.insertQueue(queue, db)
        }
    }

    static func insertQueue(_ queue: MediaQueue, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO queues (id, bucket, name, state, max_concurrent, max_size, category, notify_config, create_time, update_time)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                queue.id.rawValue, queue.bucket, queue.name, queue.state.rawValue, queue.maxConcurrent, queue.maxSize,
                queue.category, queue.notifyConfig.xml.xmlString(), queue.createTime.milliseconds, queue.updateTime.milliseconds,
            ]
        )
    }

    public func queues(bucket: String?) async throws -> [MediaQueue] {
        try await read { db in
            let rows: [Row]
            if let bucket {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM queues WHERE bucket = ? ORDER BY ordinal", arguments: [bucket])
            } else {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM queues ORDER BY ordinal")
            }
            return try rows.map(Self.queue)
        }
    }

    public func queue(id: QueueID) async throws -> MediaQueue? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM queues WHERE id = ?", arguments: [id.rawValue]).map(Self.queue)
        }
    }

    public func updateQueue(_ queue: MediaQueue) async throws {
        try await transaction { db in
            guard let oldState = try String.fetchOne(db, sql: "SELECT state FROM queues WHERE id = ?", arguments: [queue.id.rawValue]) else {
                throw CIError(.noSuchQueue, "queue \(queue.id) does not exist", element: "QueueId")
            }
            try db.execute(
                sql: """
                    UPDATE queues SET name = ?, state = ?, max_concurrent = ?, max_size = ?, category = ?,
                        notify_config = ?, update_time = ? WHERE id = ?
                    """,
                arguments: [
                    queue.name, queue.state.rawValue, queue.maxConcurrent, queue.maxSize, queue.category,
                    queue.notifyConfig.xml.xmlString(), queue.updateTime.milliseconds, queue.id.rawValue,
                ]
            )
            guard oldState != queue.state.rawValue else { return }
            let (from, to): (JobState, JobState) = queue.state == .paused ? (.submitted, .pause) : (.pause, .submitted)
            try db.execute(
                sql: "UPDATE jobs SET state = ? WHERE queue_id = ? AND state = ?",
                arguments: [to.rawValue, queue.id.rawValue, from.rawValue]
            )
        }
    }

    public func deleteQueue(id: QueueID) async throws {
        try await transaction { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM queues WHERE id = ?", arguments: [id.rawValue]) == true else {
                throw CIError(.noSuchQueue, "queue \(id) does not exist", element: "QueueId")
            }
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM jobs WHERE queue_id = ? AND state IN ('Submitted', 'Pause', 'Running') LIMIT 1", arguments: [id.rawValue]) == true {
                throw CIError(.invalidArgument, "queue \(id) still holds unfinished jobs", element: "QueueId")
            }
            try db.execute(sql: "DELETE FROM queues WHERE id = ?", arguments: [id.rawValue])
        }
    }

    // MARK: Jobs

    public func submit(_ submissions: [Submission]) async throws -> [SubmissionOutcome] {
        let now = time.now
        let outcomes = try await transaction { db in try Self.store(submissions, now: now, db) }
        for case .created(let jobs) in outcomes { recentJobs.insert(jobs) }
        return outcomes
    }

    public func submit(_ submissions: [Submission], thenClaim claim: ClaimRequest) async throws -> (outcomes: [SubmissionOutcome], claim: ClaimResult) {
        let now = time.now
        let recentJobs = self.recentJobs
        let (outcomes, claimed, unclaimed) = try await transaction { db in
            let outcomes = try Self.store(submissions, now: now, db)
            var created: [Int64: Job] = [:]
            for case .created(let jobs) in outcomes {
                for job in jobs { created[job.sequence] = job }
            }
            // The jobs just stored are at hand; older ones may be in the recent-jobs cache.
            let claimed = try Self.claim(claim, db) { sequences in
                var found = recentJobs.take(sequences.filter { created[$0] == nil })
                for sequence in sequences {
                    if let job = created.removeValue(forKey: sequence) { found[sequence] = job }
                }
                return found
            }
            return (outcomes, claimed, created.values.sorted { $0.sequence < $1.sequence })
        }
        recentJobs.insert(unclaimed)
        return (outcomes, claimed)
    }

    /// Stores the submissions' jobs (see `submit`), in the caller's transaction.
    static func store(_ submissions: [Submission], now: Timestamp, _ db: Database) throws -> [SubmissionOutcome] {
        var queueCache: [QueueID: (state: String, maxSize: Int, unfinished: Int)] = [:]
        func queueInfo(_ id: QueueID) throws -> (state: String, maxSize: Int, unfinished: Int)? {
            if let cached = queueCache[id] { return cached }
            guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT state, max_size FROM queues WHERE id = ?"), arguments: [id.rawValue]) else {
                return nil
            }
            let unfinished = try Int.fetchOne(
                db.cachedStatement(sql: "SELECT COUNT(*) FROM jobs WHERE queue_id = ? AND state IN ('Submitted', 'Pause', 'Running')"),
                arguments: [id.rawValue]
            ) ?? 0
            let info = (state: row["state"] as String, maxSize: row["max_size"] as Int, unfinished: unfinished)
            queueCache[id] = info
            return info
        }

        var outcomes: [SubmissionOutcome] = []
        outcomes.reserveCapacity(submissions.count)
        submissionLoop: for submission in submissions {
            if let key = submission.idempotencyKey,
               let ids = try String.fetchOne(db.cachedStatement(sql: "SELECT job_ids FROM idempotency_keys WHERE key = ?"), arguments: [key]) {
                outcomes.append(.duplicate(ids.split(separator: ",").map { JobID(rawValue: String($0)) }))
                continue
            }
            var perQueue: [QueueID: Int] = [:]
            for job in submission.jobs { perQueue[job.queueID, default: 0] += 1 }
            for (queueID, count) in perQueue {
                guard let info = try queueInfo(queueID) else {
                    outcomes.append(.refused(CIError(.noSuchQueue, "queue \(queueID) does not exist", element: "QueueId")))
                    continue submissionLoop
                }
                if info.unfinished + count > info.maxSize {
                    outcomes.append(.refused(CIError(
                        .queueFull,
                        "queue \(queueID) already holds \(info.unfinished) unfinished jobs (MaxSize \(info.maxSize))",
                        element: "QueueId"
                    )))
                    continue submissionLoop
                }
            }
            var created: [Job] = []
            for var job in submission.jobs {
                guard let info = try queueInfo(job.queueID) else { continue }
                job.state = info.state == MediaQueue.State.paused.rawValue ? .pause : .submitted
                job.sequence = try Self.insert(job, db)
                queueCache[job.queueID]?.unfinished += 1
                created.append(job)
            }
            if let key = submission.idempotencyKey {
                var insert = DirectStatement(try db.cachedStatement(sql: "INSERT INTO idempotency_keys (key, job_ids, created_at) VALUES (?, ?, ?)"))
                insert.bind(key)
                insert.bind(created.map(\.id.rawValue).joined(separator: ","))
                insert.bind(now.milliseconds)
                try insert.run(db)
            }
            outcomes.append(.created(created))
        }
        return outcomes
    }

    public func job(id: JobID) async throws -> Job? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT \(Self.jobColumns) FROM jobs WHERE id = ?", arguments: [id.rawValue]).map(Self.job)
        }
    }

    public func claim(_ request: ClaimRequest) async throws -> ClaimResult {
        let recentJobs = self.recentJobs
        return try await transaction { db in try Self.claim(request, db, known: recentJobs.take) }
    }

    /// Claims jobs (see `claim`) in the caller's transaction. `known` returns, of the claimed
    /// sequence numbers, the jobs already in memory.
    static func claim(_ request: ClaimRequest, _ db: Database, known: ([Int64]) -> [Int64: Job]) throws -> ClaimResult {
        let (owner, now, leaseUntil, limit) = (request.owner, request.now, request.leaseUntil, request.limit)
        var claimedSeqs: [Int64] = []
        var moreWaiting = false
        let queues = try Row.fetchAll(db.cachedStatement(sql: "SELECT id, max_concurrent FROM queues WHERE state = 'Active' ORDER BY ordinal"))
        for queue in queues {
            let queueID: String = queue[0]
            let running = try Int.fetchOne(
                db.cachedStatement(sql: "SELECT COUNT(*) FROM jobs WHERE queue_id = ? AND state = 'Running' AND lease_expires > ?"),
                arguments: [queueID, now.milliseconds]
            ) ?? 0
            let free = min((queue[1] as Int) - running, limit - claimedSeqs.count)
            guard free > 0 else {
                // Full (the queue, or this claim): does anything wait behind it?
                if !moreWaiting {
                    moreWaiting = try Bool.fetchOne(
                        db.cachedStatement(sql: """
                            SELECT EXISTS (SELECT 1 FROM jobs WHERE queue_id = ? AND state = 'Submitted')
                                OR EXISTS (SELECT 1 FROM jobs WHERE queue_id = ? AND state = 'Running' AND lease_expires <= ?)
                            """),
                        arguments: [queueID, queueID, now.milliseconds]
                    ) ?? true
                }
                continue
            }
            // Waiting jobs and jobs whose process died (lease expired), merged in dispatch order.
            let sql = """
                SELECT seq, job_level FROM jobs WHERE queue_id = ? AND state = 'Submitted'
                ORDER BY job_level DESC, seq LIMIT ?
                """
            var candidates = try Row.fetchAll(db.cachedStatement(sql: sql), arguments: [queueID, free]).map { (seq: $0[0] as Int64, level: $0[1] as Int) }
            let orphans = try Row.fetchAll(
                db.cachedStatement(sql: """
                    SELECT seq, job_level FROM jobs WHERE queue_id = ? AND state = 'Running' AND lease_expires <= ?
                    ORDER BY job_level DESC, seq LIMIT ?
                    """),
                arguments: [queueID, now.milliseconds, free]
            ).map { (seq: $0[0] as Int64, level: $0[1] as Int) }
            if !orphans.isEmpty {
                candidates = (candidates + orphans).sorted { ($0.level, -$0.seq) > ($1.level, -$1.seq) }
            }
            // As many as could be taken were there: more may wait.
            if candidates.count >= free { moreWaiting = true }
            claimedSeqs.append(contentsOf: candidates.prefix(free).map(\.seq))
        }
        guard !claimedSeqs.isEmpty else { return ClaimResult(jobs: [], moreWaiting: moreWaiting) }
        // One cached statement per job rather than an `IN (…)` list: a statement whose text
        // changes is prepared anew each time (with GRDB's authorizer called for every column),
        // which cost more than the executions at the small claims of a moderately busy service.
        let claim = try db.cachedStatement(sql: """
            UPDATE jobs SET state = 'Running', start_time = COALESCE(start_time, ?), lease_owner = ?,
                lease_expires = ?, attempts = attempts + 1
            WHERE seq = ? RETURNING start_time, progress, attempts, cancel_requested
            """)
        let readJob = try db.cachedStatement(sql: "SELECT \(Self.jobColumns) FROM jobs WHERE seq = ?")
        // Jobs this process submitted come from memory with their mutable columns taken from the
        // update; the others are read in full.
        var recent = known(claimedSeqs)
        var jobs: [Job] = []
        jobs.reserveCapacity(claimedSeqs.count)
        for seq in claimedSeqs {
            var update = DirectStatement(claim)
            update.bind(now.milliseconds)
            update.bind(owner)
            update.bind(leaseUntil.milliseconds)
            update.bind(seq)
            let columns = try update.runReturningFirst(db) { row in
                (startTime: row.optionalInt64(0), progress: row.int(1), attempts: row.int(2), cancelRequested: row.bool(3))
            }
            guard let columns else { continue }
            if var job = recent.removeValue(forKey: seq) {
                job.state = .running
                job.startTime = columns.startTime.map(Timestamp.init(milliseconds:))
                job.progress = columns.progress
                job.attempts = columns.attempts
                job.cancelRequested = columns.cancelRequested
                job.lease = Job.Lease(owner: owner, expiresAt: leaseUntil)
                jobs.append(job)
            } else if let full = try Row.fetchOne(readJob, arguments: [seq]) {
                jobs.append(try Self.job(full))
            }
        }
        return ClaimResult(jobs: jobs, moreWaiting: moreWaiting)
    }

    public func renewLeases(_ ids: [JobID], owner: String, until: Timestamp) async throws -> [JobID] {
        guard !ids.isEmpty else { return [] }
        return try await transaction { db in
            var lost: [JobID] = []
            for id in ids {
                try db.execute(
                    sql: "UPDATE jobs SET lease_expires = ? WHERE id = ? AND state = 'Running' AND lease_owner = ?",
                    arguments: [until.milliseconds, id.rawValue, owner]
                )
                if db.changesCount == 0 { lost.append(id) }
            }
            return lost
        }
    }

    public func release(_ ids: [JobID], owner: String) async throws {
        guard !ids.isEmpty else { return }
        try await transaction { db in
            for id in ids {
                try db.execute(
                    sql: "UPDATE jobs SET state = 'Submitted', lease_owner = NULL, lease_expires = NULL WHERE id = ? AND state = 'Running' AND lease_owner = ?",
                    arguments: [id.rawValue, owner]
                )
            }
        }
    }

    public func updateProgress(_ id: JobID, progress: Int) async throws {
        try await transaction { db in
            try db.execute(sql: "UPDATE jobs SET progress = ? WHERE id = ? AND state = 'Running'", arguments: [progress, id.rawValue])
        }
    }

    public func finish(_ jobs: [FinishedJob], owner: String) async throws -> [Bool] {
        guard !jobs.isEmpty else { return [] }
        return try await transaction { db in try Self.finish(jobs, owner: owner, db) }
    }

    public func finish(_ jobs: [FinishedJob], owner: String, thenClaim claim: ClaimRequest) async throws -> (recorded: [Bool], claim: ClaimResult) {
        let recentJobs = self.recentJobs
        return try await transaction { db in
            let recorded = try Self.finish(jobs, owner: owner, db)
            return (recorded, try Self.claim(claim, db, known: recentJobs.take))
        }
    }

    /// Ends jobs (see `finish`) in the caller's transaction.
    static func finish(_ jobs: [FinishedJob], owner: String, _ db: Database) throws -> [Bool] {
        // By seq (the rowid) rather than id: one b-tree lookup instead of two.
        let update = try db.cachedStatement(sql: """
            UPDATE jobs SET state = ?, end_time = ?, progress = ?, code = ?, message = ?, media_result = ?,
                media_info = ?, lease_owner = NULL, lease_expires = NULL
            WHERE seq = ? AND id = ? AND state = 'Running' AND lease_owner = ?
            """)
        return try jobs.map { finished in
            let job = finished.job
            var bound = DirectStatement(update)
            bound.bind(job.state.rawValue)
            bound.bind(job.endTime?.milliseconds)
            bound.bind(job.progress)
            bound.bind(job.code)
            bound.bind(job.message)
            bound.bind(job.mediaResult?.xmlString())
            bound.bind(job.mediaInfo?.xmlString())
            bound.bind(job.sequence)
            bound.bind(job.id.rawValue)
            bound.bind(owner)
            try bound.run(db)
            guard db.changesCount == 1 else { return false }
            for entry in finished.outbox { try Self.insertOutbox(entry, db) }
            return true
        }
    }

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

    public func cancel(_ id: JobID, now: Timestamp) async throws -> CancelOutcome {
        try await transaction { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT \(Self.jobColumns) FROM jobs WHERE id = ?", arguments: [id.rawValue]) else {
                throw CIError(.noSuchJob, "job \(id) does not exist")
            }
            var job = try Self.job(row)
            switch job.state {
            case .submitted, .pause:
                try db.execute(sql: "UPDATE jobs SET state = 'Cancel', end_time = ? WHERE id = ?", arguments: [now.milliseconds, id.rawValue])
                job.state = .cancel
                job.endTime = now
                return .cancelled(job)
            case .running:
                try db.execute(sql: "UPDATE jobs SET cancel_requested = 1 WHERE id = ?", arguments: [id.rawValue])
                job.cancelRequested = true
                return .stopping(job)
            case .success, .failed, .cancel:
                throw CIError(.invalidJobState, "job \(id) has already ended as \(job.state.rawValue)")
            }
        }
    }

    public func cancelRequests(owner: String) async throws -> [JobID] {
        try await read { db in
            try String.fetchAll(
                db,
                sql: "SELECT id FROM jobs WHERE lease_owner = ? AND state = 'Running' AND cancel_requested = 1",
                arguments: [owner]
            ).map(JobID.init(rawValue:))
        }
    }

    public func jobs(_ query: JobQuery) async throws -> [Job] {
        try await read { db in
            var conditions: [String] = []
            var arguments = StatementArguments()
            if let bucket = query.bucket { conditions.append("bucket = ?"); arguments += [bucket] }
            if let queueID = query.queueID { conditions.append("queue_id = ?"); arguments += [queueID.rawValue] }
            if let tag = query.tag { conditions.append("tag = ?"); arguments += [tag] }
            if !query.states.isEmpty {
                conditions.append("state IN (\(query.states.map { "'\($0.rawValue)'" }.sorted().joined(separator: ",")))")
            }
            if let from = query.createdFrom { conditions.append("creation_time >= ?"); arguments += [from.milliseconds] }
            if let to = query.createdTo { conditions.append("creation_time <= ?"); arguments += [to.milliseconds] }
            if let after = query.after {
                conditions.append(query.newestFirst ? "seq < ?" : "seq > ?")
                arguments += [after]
            }
            let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            arguments += [query.limit]
            return try Row.fetchAll(
                db,
                sql: "SELECT \(Self.jobColumns) FROM jobs \(whereClause) ORDER BY seq \(query.newestFirst ? "DESC" : "ASC") LIMIT ?",
                arguments: arguments
            ).map(Self.job)
        }
    }

    // MARK: Outbox

    public func dueOutbox(_ channel: NotifyConfig.Channel, now: Timestamp, limit: Int) async throws -> [OutboxEntry] {
        try await read { db in
            try Row.fetchAll(
                db.cachedStatement(sql: "SELECT \(Self.outboxColumns) FROM outbox WHERE status = 'pending' AND kind = ? AND next_attempt <= ? ORDER BY next_attempt, created_at LIMIT ?"),
                arguments: [channel == .url ? "url" : "mq", now.milliseconds, limit]
            ).map(Self.outboxEntry)
        }
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

    public func markAttemptFailed(_ id: String, error: String, nextAttempt: Timestamp?) async throws {
        try await transaction { db in
            if let nextAttempt {
                try db.execute(
                    sql: "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt = ? WHERE id = ?",
                    arguments: [error, nextAttempt.milliseconds, id]
                )
            } else {
                try db.execute(
                    sql: "UPDATE outbox SET attempts = attempts + 1, last_error = ?, status = 'dead' WHERE id = ?",
                    arguments: [error, id]
                )
            }
        }
    }

    public func deadOutbox(limit: Int) async throws -> [OutboxEntry] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT \(Self.outboxColumns) FROM outbox WHERE status = 'dead' ORDER BY created_at LIMIT ?", arguments: [limit])
                .map(Self.outboxEntry)
        }
    }

    public func redriveDead(now: Timestamp) async throws -> Int {
        try await transaction { db in
            try db.execute(
                sql: "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt = ? WHERE status = 'dead'",
                arguments: [now.milliseconds]
            )
            return db.changesCount
        }
    }

    public func purgeIdempotencyKeys(before cutoff: Timestamp) async throws {
        try await transaction { db in
            try db.execute(sql: "DELETE FROM idempotency_keys WHERE created_at < ?", arguments: [cutoff.milliseconds])
        }
    }
}
