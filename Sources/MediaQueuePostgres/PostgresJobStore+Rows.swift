import Foundation
import Logging
import MediaQueueCore
import MediaQueueXML
import NIOCore
import PostgresNIO

/// Conversions between rows and model values, as in the SQLite store: times in milliseconds,
/// the XML parts of a job as XML text.
extension PostgresJobStore {
    static let jobColumns = """
        seq, id, bucket, queue_id, tag, state, job_level, input, operation, callback, creation_time,
        start_time, end_time, progress, code, message, media_result, media_info, lease_owner,
        lease_expires, attempts, cancel_requested
        """

    /// A row of `SELECT \(jobColumns)`.
    static func job(_ row: PostgresRow) throws -> Job {
        var columns = Columns(row)
        let sequence: Int64 = try columns.next()
        let id: String = try columns.next()
        let bucket: String = try columns.next()
        let queueID: String = try columns.next()
        let tag: String = try columns.next()
        let state: String = try columns.next()
        let level: Int = try columns.next()
        let input: String = try columns.next()
        let operation: String = try columns.next()
        let callback: String = try columns.next()
        let creationTime: Int64 = try columns.next()
        let startTime: Int64? = try columns.next()
        let endTime: Int64? = try columns.next()
        let progress: Int = try columns.next()
        let code: String = try columns.next()
        let message: String = try columns.next()
        let mediaResult: String? = try columns.next()
        let mediaInfo: String? = try columns.next()
        let leaseOwner: String? = try columns.next()
        let leaseExpires: Int64? = try columns.next()
        let attempts: Int = try columns.next()
        let cancelRequested: Bool = try columns.next()
        let lease = leaseOwner.flatMap { owner in leaseExpires.map { Job.Lease(owner: owner, expiresAt: Timestamp(milliseconds: $0)) } }
        return Job(
            id: JobID(rawValue: id), bucket: bucket, queueID: QueueID(rawValue: queueID), tag: tag,
            state: JobState(rawValue: state) ?? .failed, jobLevel: level, sequence: sequence,
            input: try XMLDocumentParser.parse(input), operation: try XMLDocumentParser.parse(operation),
            callback: try CallbackOverride(request: XMLDocumentParser.parse(callback)),
            creationTime: Timestamp(milliseconds: creationTime),
            startTime: startTime.map(Timestamp.init(milliseconds:)), endTime: endTime.map(Timestamp.init(milliseconds:)),
            progress: progress, code: code, message: message,
            mediaResult: try mediaResult.map { try XMLDocumentParser.parse($0) },
            mediaInfo: try mediaInfo.map { try XMLDocumentParser.parse($0) },
            lease: lease, attempts: attempts, cancelRequested: cancelRequested
        )
    }

    static let queueColumns = "id, bucket, name, state, max_concurrent, max_size, category, notify_config, create_time, update_time"

    /// A row of `SELECT \(queueColumns)`.
    func queue(from row: PostgresRow) throws -> MediaQueue {
        var columns = Columns(row)
        let id: String = try columns.next()
        let bucket: String = try columns.next()
        let name: String = try columns.next()
        let state: String = try columns.next()
        let maxConcurrent: Int = try columns.next()
        let maxSize: Int = try columns.next()
        let category: String = try columns.next()
        let notifyConfig: String = try columns.next()
        let createTime: Int64 = try columns.next()
        let updateTime: Int64 = try columns.next()
        let queueID = QueueID(rawValue: id)
        return MediaQueue(
            id: queueID, bucket: bucket, name: name, state: MediaQueue.State(rawValue: state) ?? .active,
            maxConcurrent: maxConcurrent, maxSize: maxSize, category: category,
            notifyConfig: try queueRules.rule(of: queueID, stored: notifyConfig),
            createTime: Timestamp(milliseconds: createTime), updateTime: Timestamp(milliseconds: updateTime)
        )
    }

    static let outboxColumns = """
        id, job_id, bucket, kind, url, mq_mode, mq_name, mq_region, routing_key, body, content_type, attempts,
        next_attempt, created_at, last_error
        """

    /// A row of `SELECT \(outboxColumns)`; `columns` is left at the column after them.
    static func outboxEntry(_ columns: inout Columns) throws -> OutboxEntry {
        let id: String = try columns.next()
        let jobID: String = try columns.next()
        let bucket: String = try columns.next()
        let kind: String = try columns.next()
        let url: String? = try columns.next()
        let mode: String? = try columns.next()
        let name: String? = try columns.next()
        let region: String? = try columns.next()
        let routingKey: String = try columns.next()
        let body: ByteBuffer = try columns.next()
        let contentType: String = try columns.next()
        let attempts: Int = try columns.next()
        let nextAttempt: Int64 = try columns.next()
        let createdAt: Int64 = try columns.next()
        let lastError: String? = try columns.next()
        let target: CallbackTarget.Destination = kind == "url"
            ? .url(url ?? "")
            : .mq(mode: NotifyConfig.MqMode(rawValue: mode ?? "") ?? .queue, name: name ?? "", region: region ?? "")
        return OutboxEntry(
            id: id, jobID: JobID(rawValue: jobID), bucket: bucket, target: target, routingKey: routingKey,
            body: Array(body.readableBytesView), contentType: contentType, attempts: attempts,
            nextAttempt: Timestamp(milliseconds: nextAttempt), createdAt: Timestamp(milliseconds: createdAt), lastError: lastError
        )
    }

    static func outboxEntry(_ row: PostgresRow) throws -> OutboxEntry {
        var columns = Columns(row)
        return try outboxEntry(&columns)
    }

    /// The `kind` column of a channel's rows.
    static func kind(_ channel: NotifyConfig.Channel) -> String { channel == .url ? "url" : "mq" }
}

/// A row's cells read in order.
struct Columns {
    private let row: PostgresRandomAccessRow
    private var index = 0

    init(_ row: PostgresRow) {
        self.row = PostgresRandomAccessRow(row)
    }

    mutating func next<Value: PostgresDecodable>(_: Value.Type = Value.self) throws -> Value {
        defer { index += 1 }
        return try row[index].decode(Value.self)
    }
}

/// SQL text with numbered parameters, for statements whose conditions vary.
struct SQLBuilder {
    private(set) var text = ""
    private var bindings = PostgresBindings()

    init(_ text: String = "") {
        self.text = text
    }

    mutating func append(_ sql: String) {
        text += sql
    }

    /// Binds `value` and returns its placeholder (`$n`).
    mutating func bind(_ value: some PostgresDynamicTypeEncodable) -> String {
        bindings.append(value)
        return "$\(bindings.count)"
    }

    var query: PostgresQuery { PostgresQuery(unsafeSQL: text, binds: bindings) }
}

extension PostgresConnection {
    /// The rows of `query`, read to the end.
    func rows(_ query: PostgresQuery, logger: Logger) async throws -> [PostgresRow] {
        try checkOpen()
        return try await self.query(query, logger: logger).collect()
    }

    /// Throws when the connection has closed: postgres-nio's query on a closed connection waits
    /// for ever instead of failing. A session the server ended in the middle of a transaction
    /// (`idle_in_transaction_session_timeout` after a stall of this process, an administrator,
    /// a restart) is such a connection.
    func checkOpen() throws {
        guard !isClosed else { throw ClosedConnection() }
    }

    /// The first row of `query`, if any.
    func row(_ query: PostgresQuery, logger: Logger) async throws -> PostgresRow? {
        try await rows(query, logger: logger).first
    }

    /// The first column of the first row of `query`, if any.
    func value<Value: PostgresDecodable>(_ query: PostgresQuery, as _: Value.Type = Value.self, logger: Logger) async throws -> Value? {
        guard let row = try await row(query, logger: logger) else { return nil }
        var columns = Columns(row)
        return try columns.next(Value.self)
    }

    /// Runs `query` for its effect.
    func run(_ query: PostgresQuery, logger: Logger) async throws {
        try checkOpen()
        try await self.query(query, logger: logger)
    }
}

/// The database connection closed in the middle of a store call, which did not commit.
struct ClosedConnection: Error, CustomStringConvertible {
    var description: String { "the database connection closed during the transaction" }
}
