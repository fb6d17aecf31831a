public import MediaQueueCore
import MediaQueueXML
import PostgresNIO

/// Claims, leases and job ends: which jobs run on which node, and their terminal states with
/// their callbacks.
extension PostgresJobStore {
    public func claim(_ request: ClaimRequest) async throws -> ClaimResult {
        try await transaction { connection in try await Self.claim(request, connection, logger: logger) }
    }

    /// Claims jobs (see `claim`) in the caller's transaction, through `mediaqueue_claim`
    /// (`claimFunction`), which does it on the server in one call:
    ///
    /// Each queue it claims from is locked first (its row, in creation order, so that claims
    /// never wait on each other in a circle): of several nodes claiming at once, one counts the
    /// queue's running jobs and claims at a time, so `MaxConcurrent` holds across nodes, and a
    /// pause committed before the lock is seen. Jobs are taken with `SKIP LOCKED`: one that a
    /// cancel or a late finish holds is left to it. The claimed jobs are then read in full.
    static func claim(_ request: ClaimRequest, _ connection: PostgresConnection, logger: Logger) async throws -> ClaimResult {
        let call: PostgresQuery = """
            SELECT more_waiting, claimed FROM mediaqueue_claim(\(request.owner), \(request.now.milliseconds), \(request.leaseUntil.milliseconds), \(Int64(request.limit)))
            """
        guard let row = try await connection.row(call, logger: logger) else { return ClaimResult(jobs: [], moreWaiting: false) }
        var columns = Columns(row)
        let moreWaiting: Bool = try columns.next()
        let claimed: [Int64] = try columns.next()
        guard !claimed.isEmpty else { return ClaimResult(jobs: [], moreWaiting: moreWaiting) }
        var jobs = try await connection.rows("SELECT \(unescaped: jobColumns) FROM jobs WHERE seq = ANY(\(claimed))", logger: logger).map(job)
        let order = Dictionary(uniqueKeysWithValues: claimed.enumerated().map { ($1, $0) })
        jobs.sort { order[$0.sequence, default: 0] < order[$1.sequence, default: 0] }
        return ClaimResult(jobs: jobs, moreWaiting: moreWaiting)
    }

    /// Locks the rows of queues `ids` and, in a transaction that claims afterwards, of every
    /// Active queue, in creation order: the order in which the claim takes them, so that no two
    /// transactions wait for each other in a circle. (A finish or a submission holding a later
    /// queue while its claim waited for an earlier one, which a claim elsewhere held while it
    /// waited for the later one, was a deadlock.) Returns the rows locked.
    static func lockQueues(
        _ ids: [String], claiming: Bool, _ connection: PostgresConnection, logger: Logger
    ) async throws -> [(id: String, state: String, maxSize: Int, unfinished: Int)] {
        guard claiming || !ids.isEmpty else { return [] }
        let lock: PostgresQuery = """
            SELECT id, state, max_size, unfinished FROM queues WHERE id = ANY(\(ids)) OR (\(claiming) AND state = 'Active')
            ORDER BY ordinal FOR UPDATE
            """
        return try await connection.rows(lock, logger: logger).map { row in
            var columns = Columns(row)
            return (try columns.next(), try columns.next(), try columns.next(), try columns.next())
        }
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
                UPDATE jobs SET state = 'Submitted', lease_owner = NULL, lease_expires = NULL, attempts = GREATEST(attempts - 1, 0)
                WHERE id = ANY(\(ids.map(\.rawValue))) AND state = 'Running' AND lease_owner = \(owner)
                """
            try await connection.run(release, logger: logger)
        }
    }

    public func uncountAttempts(_ ids: [JobID], owner: String) async throws {
        guard !ids.isEmpty else { return }
        try await transaction { connection in
            let uncount: PostgresQuery = """
                UPDATE jobs SET attempts = GREATEST(attempts - 1, 1)
                WHERE id = ANY(\(ids.map(\.rawValue))) AND state = 'Running' AND lease_owner = \(owner)
                """
            try await connection.run(uncount, logger: logger)
        }
    }

    public func finish(_ jobs: [FinishedJob], owner: String) async throws -> [Bool] {
        guard !jobs.isEmpty else { return [] }
        return try await transaction { connection in try await Self.finish(jobs, owner: owner, claiming: false, connection, logger: logger) }
    }

    public func finish(_ jobs: [FinishedJob], owner: String, thenClaim claim: ClaimRequest) async throws -> (recorded: [Bool], claim: ClaimResult) {
        try await transaction { connection in
            let recorded = try await Self.finish(jobs, owner: owner, claiming: true, connection, logger: logger)
            return (recorded, try await Self.claim(claim, connection, logger: logger))
        }
    }

    /// Ends jobs (see `finish`) in the caller's transaction: one update for every job (which also
    /// counts them out of their queues' unfinished jobs), one insert for the deliveries of those
    /// `owner` still held. `claiming`: the transaction claims afterwards (`lockQueues`).
    static func finish(_ finished: [FinishedJob], owner: String, claiming: Bool, _ connection: PostgresConnection, logger: Logger) async throws -> [Bool] {
        guard !finished.isEmpty else { return [] }
        let jobs = finished.map(\.job)
        _ = try await lockQueues(Array(Set(jobs.map(\.queueID.rawValue))), claiming: claiming, connection, logger: logger)
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
