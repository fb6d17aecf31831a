public import MediaQueueCore
import MediaQueueXML
import PostgresNIO

/// Claims, leases and job ends: which jobs run on which node, and their terminal states with
/// their callbacks.
extension PostgresJobStore {
    public func claim(_ request: ClaimRequest) async throws -> ClaimResult {
        try await transaction { connection in try await Self.claim(request, connection, logger: logger) }
    }

    /// Claims jobs (see `claim`) in the caller's transaction.
    ///
    /// Each queue it claims from is locked first (its row, in creation order, so that claims
    /// never wait on each other in a circle): of several nodes claiming at once, one counts the
    /// queue's running jobs and claims at a time, so `MaxConcurrent` holds across nodes, and a
    /// pause committed before the lock is seen. Jobs are taken with `SKIP LOCKED`: one that a
    /// cancel or a late finish holds is left to it.
    static func claim(_ request: ClaimRequest, _ connection: PostgresConnection, logger: Logger) async throws -> ClaimResult {
        let now = request.now.milliseconds
        var claimed: [Int64] = []
        var moreWaiting = false
        let active = try await connection.rows("SELECT id FROM queues WHERE state = 'Active' ORDER BY ordinal", logger: logger).map { row in
            var columns = Columns(row)
            return try columns.next(String.self)
        }
        for queueID in active {
            guard claimed.count < request.limit else {
                // This claim is full: does anything wait behind it?
                if !moreWaiting { moreWaiting = try await anyWaiting(queueID, now: now, connection, logger: logger) }
                continue
            }
            let lock: PostgresQuery = "SELECT max_concurrent FROM queues WHERE id = \(queueID) AND state = 'Active' FOR UPDATE"
            guard let maxConcurrent = try await connection.value(lock, as: Int.self, logger: logger) else { continue }
            let countRunning: PostgresQuery = """
                SELECT COUNT(*) FROM jobs WHERE queue_id = \(queueID) AND state = 'Running' AND lease_expires > \(now)
                """
            let running = try await connection.value(countRunning, as: Int.self, logger: logger) ?? 0
            let free = min(maxConcurrent - running, request.limit - claimed.count)
            guard free > 0 else {
                if !moreWaiting { moreWaiting = try await anyWaiting(queueID, now: now, connection, logger: logger) }
                continue
            }
            // Waiting jobs and jobs whose node died (lease expired), merged in dispatch order;
            // one more than fit tells whether more wait.
            let waiting: PostgresQuery = """
                SELECT seq, job_level FROM jobs WHERE queue_id = \(queueID) AND state = 'Submitted'
                ORDER BY job_level DESC, seq LIMIT \(free + 1) FOR UPDATE SKIP LOCKED
                """
            let orphaned: PostgresQuery = """
                SELECT seq, job_level FROM jobs WHERE queue_id = \(queueID) AND state = 'Running' AND lease_expires <= \(now)
                ORDER BY job_level DESC, seq LIMIT \(free + 1) FOR UPDATE SKIP LOCKED
                """
            var candidates = try await Self.candidates(waiting, connection, logger: logger)
            let orphans = try await Self.candidates(orphaned, connection, logger: logger)
            if !orphans.isEmpty {
                candidates = (candidates + orphans).sorted { ($0.level, -$0.sequence) > ($1.level, -$1.sequence) }
            }
            if candidates.count > free { moreWaiting = true }
            claimed.append(contentsOf: candidates.prefix(free).map(\.sequence))
        }
        guard !claimed.isEmpty else { return ClaimResult(jobs: [], moreWaiting: moreWaiting) }
        let update: PostgresQuery = """
            UPDATE jobs SET state = 'Running', start_time = COALESCE(start_time, \(now)), lease_owner = \(request.owner),
                lease_expires = \(request.leaseUntil.milliseconds), attempts = attempts + 1
            WHERE seq = ANY(\(claimed)) RETURNING \(unescaped: jobColumns)
            """
        var jobs = try await connection.rows(update, logger: logger).map(job)
        let order = Dictionary(uniqueKeysWithValues: claimed.enumerated().map { ($1, $0) })
        jobs.sort { order[$0.sequence, default: 0] < order[$1.sequence, default: 0] }
        return ClaimResult(jobs: jobs, moreWaiting: moreWaiting)
    }

    private static func candidates(_ query: PostgresQuery, _ connection: PostgresConnection, logger: Logger) async throws -> [(sequence: Int64, level: Int)] {
        try await connection.rows(query, logger: logger).map { row in
            var columns = Columns(row)
            return (try columns.next(Int64.self), try columns.next(Int.self))
        }
    }

    private static func anyWaiting(_ queueID: String, now: Int64, _ connection: PostgresConnection, logger: Logger) async throws -> Bool {
        let exists: PostgresQuery = """
            SELECT EXISTS (SELECT 1 FROM jobs WHERE queue_id = \(queueID) AND state = 'Submitted')
                OR EXISTS (SELECT 1 FROM jobs WHERE queue_id = \(queueID) AND state = 'Running' AND lease_expires <= \(now))
            """
        return try await connection.value(exists, as: Bool.self, logger: logger) ?? true
    }

    public func renewLeases(_ ids: [JobID], owner: String, until: Timestamp) async throws -> [JobID] {
        guard !ids.isEmpty else { return [] }
        let held = try await transaction { connection in
            let renew: PostgresQuery = """
                UPDATE jobs SET lease_expires = \(until.milliseconds)
                WHERE id = ANY(\(ids.map(\.rawValue))) AND state = 'Running' AND lease_owner = \(owner) RETURNING id
                """
            return try await connection.rows(renew, logger: logger).map { row in
                var columns = Columns(row)
                return try columns.next(String.self)
            }
        }
        let renewed = Set(held)
        return ids.filter { !renewed.contains($0.rawValue) }
    }

    public func release(_ ids: [JobID], owner: String) async throws {
        guard !ids.isEmpty else { return }
        try await transaction { connection in
            let release: PostgresQuery = """
                UPDATE jobs SET state = 'Submitted', lease_owner = NULL, lease_expires = NULL
                WHERE id = ANY(\(ids.map(\.rawValue))) AND state = 'Running' AND lease_owner = \(owner)
                """
            try await connection.run(release, logger: logger)
        }
    }

    public func finish(_ jobs: [FinishedJob], owner: String) async throws -> [Bool] {
        guard !jobs.isEmpty else { return [] }
        return try await transaction { connection in try await Self.finish(jobs, owner: owner, connection, logger: logger) }
    }

    public func finish(_ jobs: [FinishedJob], owner: String, thenClaim claim: ClaimRequest) async throws -> (recorded: [Bool], claim: ClaimResult) {
        try await transaction { connection in
            let recorded = try await Self.finish(jobs, owner: owner, connection, logger: logger)
            return (recorded, try await Self.claim(claim, connection, logger: logger))
        }
    }

    /// Ends jobs (see `finish`) in the caller's transaction: one update for every job (which also
    /// counts them out of their queues' unfinished jobs), one insert for the deliveries of those
    /// `owner` still held.
    static func finish(_ finished: [FinishedJob], owner: String, _ connection: PostgresConnection, logger: Logger) async throws -> [Bool] {
        guard !finished.isEmpty else { return [] }
        let jobs = finished.map(\.job)
        // Nil results travel as '' (arrays of this driver hold no NULL; XML text is never empty).
        let update: PostgresQuery = """
            WITH ended AS (
            UPDATE jobs SET state = f.state, end_time = NULLIF(f.end_time, -1), progress = f.progress, code = f.code,
                message = f.message, media_result = NULLIF(f.media_result, ''), media_info = NULLIF(f.media_info, ''),
                lease_owner = NULL, lease_expires = NULL
            FROM unnest(
                \(jobs.map(\.sequence))::bigint[], \(jobs.map(\.id.rawValue))::text[], \(jobs.map(\.state.rawValue))::text[],
                \(jobs.map { $0.endTime?.milliseconds ?? -1 })::bigint[], \(jobs.map { Int64($0.progress) })::bigint[],
                \(jobs.map(\.code))::text[], \(jobs.map(\.message))::text[],
                \(jobs.map { $0.mediaResult?.xmlString() ?? "" })::text[], \(jobs.map { $0.mediaInfo?.xmlString() ?? "" })::text[]
            ) AS f(seq, id, state, end_time, progress, code, message, media_result, media_info)
            WHERE jobs.seq = f.seq AND jobs.id = f.id AND jobs.state = 'Running' AND jobs.lease_owner = \(owner)
            RETURNING jobs.id, jobs.queue_id
            ), counted AS (
                UPDATE queues SET unfinished = queues.unfinished - removed.jobs
                FROM (SELECT queue_id, COUNT(*) AS jobs FROM ended GROUP BY queue_id) AS removed WHERE queues.id = removed.queue_id
            )
            SELECT id FROM ended
            """
        var ended = Set<String>()
        for row in try await connection.rows(update, logger: logger) {
            var columns = Columns(row)
            ended.insert(try columns.next(String.self))
        }
        let recorded = jobs.map { ended.contains($0.id.rawValue) }
        let deliveries = zip(finished, recorded).filter(\.1).flatMap(\.0.outbox)
        try await insertOutbox(deliveries, connection, logger: logger)
        return recorded
    }
}
