import Logging
import MediaQueueCore
import PostgresNIO
import Synchronization

/// A transaction about to commit, as the server knows it: enough to ask later how it ended.
struct OpenTransaction: Sendable {
    /// Its id (`xid8`, as text).
    let id: String
    /// The server process that runs it.
    let backendPID: Int32
}

/// What the server says of a transaction whose `COMMIT` got no answer.
enum TransactionStatus: Equatable {
    case committed
    case aborted
    /// Still open: its `COMMIT` has not reached the server, or is being carried out.
    case inProgress
    /// Too old for the server to remember, or an answer this code does not know.
    case unknown
}

/// A `COMMIT` whose answer was lost (the connection dropped after it went out) leaves the caller
/// unable to tell whether the transaction committed. Taking it for "nothing stored" makes a
/// submission without a key a second job; giving up on it leaves the jobs it claimed to wait for
/// their lease. So the store asks the server.
///
/// It asks through a pool of its own (`inquiries`), idle and empty until then: the main pool
/// may still hold connections that died with the lost one and that it has not noticed yet, and
/// a query there can wait for ever.
extension PostgresJobStore {
    /// The transaction `connection` runs, read just before its `COMMIT`; nil when it has written
    /// nothing (then it has no id, and how it ends changes nothing).
    static func openTransaction(on connection: PostgresConnection, logger: Logger) async throws -> OpenTransaction? {
        guard let row = try await connection.row("SELECT pg_current_xact_id_if_assigned()::text, pg_backend_pid()", logger: logger) else {
            return nil
        }
        var columns = Columns(row)
        guard let id = try columns.next(String?.self) else { return nil }
        return OpenTransaction(id: id, backendPID: try columns.next())
    }

    /// Returns once `transaction`, whose `COMMIT` failed with `failure` without an answer from the
    /// server, is known to have committed. Throws `failure` once it is known not to have, when
    /// the server answers the question with an error, when `commitInquiryPatience` has passed
    /// without an answer, or when the task is cancelled; the caller then handles it as any store
    /// failure.
    ///
    /// A transaction still open and idle is ended by ending its server process: its `COMMIT`
    /// never arrived, and it would otherwise wait until the server noticed the connection gone,
    /// which can take hours. One carrying out its `COMMIT` is left to finish.
    ///
    /// The patience counts from the last answer that the `COMMIT` is being carried out by an
    /// active server process (up to `commitInProgressPatience` in all): a server that says so is
    /// there, and its answer will come; taking a commit that takes long for a failure would make a
    /// submission without a key a second job.
    func confirmCommitted(_ transaction: OpenTransaction, failure: any Error) async throws {
        let started = time.now
        var deadline = started + Self.commitInquiryPatience
        let logger = self.logger
        var pause = Self.commitInquiryFirstPause
        while true {
            var status: TransactionStatus?
            do {
                status = try await ask(within: timeLeft(until: deadline)) { connection in
                    try await Self.status(of: transaction, connection, logger: logger)
                }
                if status == .inProgress {
                    let committing = try await ask(within: timeLeft(until: deadline)) { connection in
                        try await Self.endIdleServerProcess(of: transaction, connection, logger: logger)
                    }
                    if committing {
                        deadline = max(deadline, min(time.now + Self.commitInquiryPatience, started + commitInProgressPatience))
                    }
                }
            } catch let error as PSQLError where error.serverInfo?[.severity] == "ERROR" {
                // The server refuses the question itself (no right to end the process): asking
                // again would not help. (FATAL ones, a server restarting, may pass.)
                logger.warning("cannot ask how a transaction whose COMMIT answer was lost ended", metadata: ["error": "\(String(reflecting: error))"])
                throw failure
            } catch {
                logger.debug("asking how a transaction ended failed; asking again", metadata: ["error": "\(String(reflecting: error))"])
            }
            switch status {
            case .committed:
                logger.notice("a COMMIT whose answer was lost had committed", metadata: ["xid": "\(transaction.id)"])
                return
            case .aborted, .unknown:
                throw failure
            case .inProgress, nil:
                break
            }
            guard time.now + pause < deadline, !Task.isCancelled else {
                logger.warning("no answer on how a transaction whose COMMIT answer was lost ended", metadata: ["xid": "\(transaction.id)"])
                throw failure
            }
            do {
                try await time.sleep(for: pause)
            } catch {
                throw failure
            }
            pause = min(pause * 2, Self.commitInquiryLongestPause)
        }
    }

    /// One question's time limit: `commitInquiryRoundLimit`, or less when the deadline is nearer.
    private func timeLeft(until deadline: Timestamp) -> Duration {
        min(Self.commitInquiryRoundLimit, .milliseconds(max(deadline.milliseconds - time.now.milliseconds, 0)))
    }

    private static func status(of transaction: OpenTransaction, _ connection: PostgresConnection, logger: Logger) async throws -> TransactionStatus {
        let status = try await connection.value("SELECT pg_xact_status(\(transaction.id)::xid8)", as: String?.self, logger: logger)
        switch status ?? nil {
        case "committed": return .committed
        case "aborted": return .aborted
        case "in progress": return .inProgress
        default: return .unknown
        }
    }

    /// Ends the server process running `transaction` if it waits, idle, for the rest of the
    /// transaction: not one carrying out its `COMMIT` (a trigger, a wait for a standby), which
    /// is left to finish, nor a later process given the same number. Returns whether the process
    /// is carrying out the `COMMIT` (active).
    private static func endIdleServerProcess(of transaction: OpenTransaction, _ connection: PostgresConnection, logger: Logger) async throws -> Bool {
        let state = try await connection.value(
            """
            SELECT state, CASE WHEN state = 'idle in transaction' THEN pg_terminate_backend(pid) END FROM pg_stat_activity
            WHERE pid = \(transaction.backendPID) AND backend_xid = \(transaction.id)::xid8::xid
            """,
            as: String?.self, logger: logger
        )
        return (state ?? nil) == "active"
    }

    /// `query` on a connection of the inquiry pool, or a failure once `limit` has passed. A query
    /// still running then is abandoned rather than waited for (on a connection that closed before
    /// it was sent, it never ends), and its connection is closed: the pool holds two, and a lease
    /// left to such a query would be lost to every later question.
    func ask<T: Sendable>(within limit: Duration, _ query: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let inquiries = self.inquiries
        let round = QuestionRound()
        return try await withCheckedThrowingContinuation { continuation in
            let work = Task {
                let result: Result<T, any Error>
                do {
                    result = .success(
                        try await Self.withOpenConnection(from: inquiries) { connection in
                            try round.lend(connection)
                            defer { round.lent.withLock { $0 = nil } }
                            return try await query(connection)
                        }
                    )
                } catch {
                    result = .failure(error)
                }
                round.timer.withLock { $0?.cancel() }
                if round.claim() { continuation.resume(with: result) }
            }
            let sleeper = Task { [time] in
                guard (try? await time.sleep(for: limit)) != nil, round.abandon() else { return }
                continuation.resume(throwing: CIError(.internalError, "the database did not answer within \(limit)"))
                work.cancel()
            }
            round.timer.withLock { $0 = sleeper }
        }
    }

    /// How long the server is asked before the failure goes to the caller, the pauses between
    /// rounds (doubling), and how long one question may take.
    static let commitInquiryPatience = Duration.seconds(8)
    static let commitInquiryFirstPause = Duration.milliseconds(50)
    static let commitInquiryLongestPause = Duration.seconds(1)
    static let commitInquiryRoundLimit = Duration.seconds(2)
}

/// One question: of its answer and its time limit, the one that comes first resumes it.
private final class QuestionRound: Sendable {
    private let taken = Atomic(false)
    /// The connection the question runs on, while it runs: closed when the limit comes first.
    let lent = Mutex<PostgresConnection?>(nil)
    /// The limit's sleep, cancelled by the answer.
    let timer = Mutex<Task<Void, Never>?>(nil)

    /// True for the first caller only.
    func claim() -> Bool {
        taken.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged
    }

    /// The limit came: true when it came first, and then the connection lent, if any, is
    /// closed, so that its query ends and the pool takes it back. Under the lock that `lend`
    /// takes, so a connection lent a moment later is closed by `lend` instead.
    func abandon() -> Bool {
        lent.withLock { connection in
            guard claim() else { return false }
            _ = connection?.close() as EventLoopFuture<Void>?
            return true
        }
    }

    /// Records the connection the question is about to run on; throws, closing it, when the
    /// limit already came (the pool lent it late: its query would hold it unwaited for).
    func lend(_ connection: PostgresConnection) throws {
        try lent.withLock { lent in
            guard !taken.load(ordering: .relaxed) else {
                _ = connection.close() as EventLoopFuture<Void>
                throw CancellationError()
            }
            lent = connection
        }
    }
}
