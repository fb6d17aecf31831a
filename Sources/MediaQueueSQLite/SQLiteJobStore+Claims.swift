import Foundation
import GRDB
public import MediaQueueCore
import MediaQueueXML

/// Claims, leases and job ends: which jobs run where, and their terminal states with their callbacks.
extension SQLiteJobStore {
    public func claim(_ request: ClaimRequest) async throws -> ClaimResult {
        let recentJobs = self.recentJobs
        return try await transaction { db in try Self.claim(request, db, known: recentJobs.take) }
    }

    /// Claims jobs (see `claim`) in the caller's transaction. `known` returns, of the claimed
    /// sequence numbers, the jobs already in memory.
    static func claim(_ request: ClaimRequest, _ db: Database, known: ([Int64]) -> [Int64: Job]) throws -> ClaimResult {
        let (choices, moreWaiting) = try chooseClaims(request, arriving: [], db)
        let stored = choices.map { choice -> Int64 in
            guard case .stored(let sequence) = choice else { preconditionFailure("nothing arrived") }
            return sequence
        }
        return ClaimResult(jobs: try claimStored(stored, request, db, known: known), moreWaiting: moreWaiting)
    }

    /// A job a claim takes: a stored row, or one of the jobs arriving in the claim's transaction
    /// (by its index), not inserted yet.
    enum ClaimChoice: Equatable {
        case stored(Int64)
        case arriving(Int)
    }

    /// The jobs a claim takes, in dispatch order, and whether any claimable job is left waiting.
    ///
    /// `arriving`: jobs this transaction is about to insert, in submission order, so after every
    /// stored job of their level. They compete for the free slots exactly as they would once
    /// inserted; the caller inserts the ones chosen already claimed, which spares each a second
    /// write of its row (and of its dispatch index entry).
    static func chooseClaims(_ request: ClaimRequest, arriving: [Job], _ db: Database) throws -> (choices: [ClaimChoice], moreWaiting: Bool) {
        let (now, limit) = (request.now, request.limit)
        var arrivingByQueue: [String: [Candidate]] = [:]
        for (index, job) in arriving.enumerated() where job.state == .submitted {
            arrivingByQueue[job.queueID.rawValue, default: []].append(Candidate(level: job.jobLevel, arrived: true, position: Int64(index)))
        }
        var choices: [ClaimChoice] = []
        var moreWaiting = false
        let queues = try Row.fetchAll(db.cachedStatement(sql: "SELECT id, max_concurrent FROM queues WHERE state = 'Active' ORDER BY ordinal"))
        for queue in queues {
            let queueID: String = queue[0]
            let running = try Int.fetchOne(
                db.cachedStatement(sql: "SELECT COUNT(*) FROM jobs WHERE queue_id = ? AND state = 'Running' AND lease_expires > ?"),
                arguments: [queueID, now.milliseconds]
            ) ?? 0
            let free = min((queue[1] as Int) - running, limit - choices.count)
            let arrived = arrivingByQueue[queueID] ?? []
            guard free > 0 else {
                // Full (the queue, or this claim): does anything wait behind it?
                if !moreWaiting {
                    moreWaiting = try !arrived.isEmpty || Bool.fetchOne(
                        db.cachedStatement(sql: """
                            SELECT EXISTS (SELECT 1 FROM jobs WHERE queue_id = ? AND state = 'Submitted')
                                OR EXISTS (SELECT 1 FROM jobs WHERE queue_id = ? AND state = 'Running' AND lease_expires <= ?)
                            """),
                        arguments: [queueID, queueID, now.milliseconds]
                    ) ?? true
                }
                continue
            }
            // Waiting jobs, jobs whose process died (lease expired) and arriving jobs, merged in
            // dispatch order; one more than fit tells whether more wait.
            let sql = """
                SELECT seq, job_level FROM jobs WHERE queue_id = ? AND state = 'Submitted'
                ORDER BY job_level DESC, seq LIMIT ?
                """
            var candidates = try Row.fetchAll(db.cachedStatement(sql: sql), arguments: [queueID, free + 1]).map {
                Candidate(level: $0[1], arrived: false, position: $0[0])
            }
            let orphans = try Row.fetchAll(
                db.cachedStatement(sql: """
                    SELECT seq, job_level FROM jobs WHERE queue_id = ? AND state = 'Running' AND lease_expires <= ?
                    ORDER BY job_level DESC, seq LIMIT ?
                    """),
                arguments: [queueID, now.milliseconds, free + 1]
            ).map { Candidate(level: $0[1], arrived: false, position: $0[0]) }
            if !orphans.isEmpty || !arrived.isEmpty {
                candidates = (candidates + orphans + arrived).sorted(by: Candidate.dispatchedBefore)
            }
            if candidates.count > free { moreWaiting = true }
            choices.append(contentsOf: candidates.prefix(free).map { $0.arrived ? .arriving(Int($0.position)) : .stored($0.position) })
        }
        return (choices, moreWaiting)
    }

    /// A job competing for a queue's free slots.
    private struct Candidate {
        var level: Int
        /// Whether it is arriving in this transaction (after every stored job of its level).
        var arrived: Bool
        /// Its sequence number, or its index among the arriving jobs.
        var position: Int64

        /// Highest level first, then submission.
        static func dispatchedBefore(_ a: Candidate, _ b: Candidate) -> Bool {
            if a.level != b.level { return a.level > b.level }
            if a.arrived != b.arrived { return !a.arrived }
            return a.position < b.position
        }
    }

    /// Marks stored jobs claimed by `request.owner` and returns them, in the given order.
    /// `known` returns, of these sequence numbers, the jobs already in memory.
    static func claimStored(_ sequences: [Int64], _ request: ClaimRequest, _ db: Database, known: ([Int64]) -> [Int64: Job]) throws -> [Job] {
        guard !sequences.isEmpty else { return [] }
        let (owner, now, leaseUntil) = (request.owner, request.now, request.leaseUntil)
        // One cached statement per job rather than an `IN (…)` list: a statement whose text
        // changes is prepared anew each time (with GRDB's authorizer called for every column),
        // which cost more than the executions at the small claims of a moderately busy service.
        // The columns the claim changes are read before the update rather than with `RETURNING`,
        // which SQLite runs through a temporary table: a read by rowid costs less. Both run in the
        // writer's transaction, so nothing changes the row between them.
        let readClaimed = try db.cachedStatement(sql: "SELECT start_time, progress, attempts, cancel_requested FROM jobs WHERE seq = ?")
        let claim = try db.cachedStatement(sql: """
            UPDATE jobs SET state = 'Running', start_time = ?, lease_owner = ?, lease_expires = ?, attempts = ?
            WHERE seq = ?
            """)
        let readJob = try db.cachedStatement(sql: "SELECT \(Self.jobColumns) FROM jobs WHERE seq = ?")
        // Jobs this process submitted come from memory with the columns a claim changes or others
        // may have changed (a cancel request) set from the read; the others are read in full.
        var recent = known(sequences)
        var jobs: [Job] = []
        jobs.reserveCapacity(sequences.count)
        for seq in sequences {
            var read = DirectStatement(readClaimed)
            read.bind(seq)
            let before = try read.runReturningFirst(db) { row in
                (startTime: row.optionalInt64(0), progress: row.int(1), attempts: row.int(2), cancelRequested: row.bool(3))
            }
            guard let before else { continue }
            let startTime = before.startTime ?? now.milliseconds
            var update = DirectStatement(claim)
            update.bind(startTime)
            update.bind(owner)
            update.bind(leaseUntil.milliseconds)
            update.bind(before.attempts + 1)
            update.bind(seq)
            try update.run(db)
            if var job = recent.removeValue(forKey: seq) {
                job.state = .running
                job.startTime = Timestamp(milliseconds: startTime)
                job.progress = before.progress
                job.attempts = before.attempts + 1
                job.cancelRequested = before.cancelRequested
                job.lease = Job.Lease(owner: owner, expiresAt: leaseUntil)
                jobs.append(job)
            } else if let full = try Row.fetchOne(readJob, arguments: [seq]) {
                jobs.append(try Self.job(full))
            }
        }
        return jobs
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
                    sql: """
                        UPDATE jobs SET state = 'Submitted', lease_owner = NULL, lease_expires = NULL, attempts = MAX(attempts - 1, 0)
                        WHERE id = ? AND state = 'Running' AND lease_owner = ?
                        """,
                    arguments: [id.rawValue, owner]
                )
            }
        }
    }

    public func uncountAttempts(_ ids: [JobID], owner: String) async throws {
        guard !ids.isEmpty else { return }
        try await transaction { db in
            for id in ids {
                try db.execute(
                    sql: "UPDATE jobs SET attempts = MAX(attempts - 1, 1) WHERE id = ? AND state = 'Running' AND lease_owner = ?",
                    arguments: [id.rawValue, owner]
                )
            }
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
            bound.bind(text: job.mediaResult?.xmlBytes())
            bound.bind(text: job.mediaInfo?.xmlBytes())
            bound.bind(job.sequence)
            bound.bind(job.id.rawValue)
            bound.bind(owner)
            try bound.run(db)
            guard db.changesCount == 1 else { return false }
            for entry in finished.outbox { try Self.insertOutbox(entry, db) }
            return true
        }
    }
}
