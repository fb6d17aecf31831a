import Foundation
import GRDB
import MediaQueueCore
import MediaQueueXML

/// Conversions between rows and model values. XML parts of a job (input, operation, results)
/// are kept as XML text: they are echoed back as they came.
extension SQLiteJobStore {
    static let jobColumns = """
        seq, id, bucket, queue_id, tag, state, job_level, input, operation, callback, creation_time,
        start_time, end_time, progress, code, message, media_result, media_info, lease_owner,
        lease_expires, attempts, cancel_requested
        """

    /// A row of `SELECT \(jobColumns)`, read by position: GRDB's lookup by column name lowercases
    /// the name for every access, which showed in profiles of the dispatch path.
    static func job(_ row: Row) throws -> Job {
        let lease: Job.Lease? = (row[18] as String?).flatMap { owner in
            (row[19] as Int64?).map { Job.Lease(owner: owner, expiresAt: Timestamp(milliseconds: $0)) }
        }
        return Job(
            id: JobID(rawValue: row[1]),
            bucket: row[2],
            queueID: QueueID(rawValue: row[3]),
            tag: row[4],
            state: JobState(rawValue: row[5]) ?? .failed,
            jobLevel: row[6],
            sequence: row[0],
            input: try XMLDocumentParser.parse(row[7] as String),
            operation: try XMLDocumentParser.parse(row[8] as String),
            callback: try callback(row[9]),
            creationTime: Timestamp(milliseconds: row[10]),
            startTime: (row[11] as Int64?).map(Timestamp.init(milliseconds:)),
            endTime: (row[12] as Int64?).map(Timestamp.init(milliseconds:)),
            progress: row[13],
            code: row[14],
            message: row[15],
            mediaResult: try (row[16] as String?).map { try XMLDocumentParser.parse($0) },
            mediaInfo: try (row[17] as String?).map { try XMLDocumentParser.parse($0) },
            lease: lease,
            attempts: row[20],
            cancelRequested: row[21]
        )
    }

    static func insert(_ job: Job, _ db: Database) throws -> Int64 {
        var insert = DirectStatement(try db.cachedStatement(sql: """
            INSERT INTO jobs (id, bucket, queue_id, tag, state, job_level, input, operation, callback,
                creation_time, start_time, end_time, progress, code, message, lease_owner, lease_expires, attempts)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """))
        insert.bind(job.id.rawValue)
        insert.bind(job.bucket)
        insert.bind(job.queueID.rawValue)
        insert.bind(job.tag)
        insert.bind(job.state.rawValue)
        insert.bind(job.jobLevel)
        insert.bind(text: job.input.xmlBytes())
        insert.bind(text: job.operation.xmlBytes())
        insert.bind(text: job.callback.request.xmlBytes())
        insert.bind(job.creationTime.milliseconds)
        insert.bind(job.startTime?.milliseconds)
        insert.bind(job.endTime?.milliseconds)
        insert.bind(job.progress)
        insert.bind(job.code)
        insert.bind(job.message)
        insert.bind(job.lease?.owner)
        insert.bind(job.lease?.expiresAt.milliseconds)
        insert.bind(job.attempts)
        try insert.run(db)
        return db.lastInsertedRowID
    }

    static func callback(_ xml: String) throws -> CallbackOverride {
        try CallbackOverride(request: XMLDocumentParser.parse(xml))
    }

    /// A row of `SELECT * FROM queues`.
    func queue(from row: Row) throws -> MediaQueue {
        let id = QueueID(rawValue: row["id"])
        return MediaQueue(
            id: id,
            bucket: row["bucket"],
            name: row["name"],
            state: MediaQueue.State(rawValue: row["state"]) ?? .active,
            maxConcurrent: row["max_concurrent"],
            maxSize: row["max_size"],
            category: row["category"],
            notifyConfig: try queueRules.rule(of: id, stored: row["notify_config"]),
            createTime: Timestamp(milliseconds: row["create_time"]),
            updateTime: Timestamp(milliseconds: row["update_time"])
        )
    }

    static let outboxColumns = """
        id, job_id, bucket, kind, url, mq_mode, mq_name, mq_region, routing_key, body, content_type, attempts,
        next_attempt, created_at, last_error
        """

    /// A row of `SELECT \(outboxColumns)`, read by position (see `job(_:)`).
    static func outboxEntry(_ row: Row) -> OutboxEntry {
        let target: CallbackTarget.Destination
        if (row[3] as String) == "url" {
            target = .url(row[4] ?? "")
        } else {
            target = .mq(mode: NotifyConfig.MqMode(rawValue: row[5] ?? "") ?? .queue, name: row[6] ?? "", region: row[7] ?? "")
        }
        return OutboxEntry(
            id: row[0], jobID: JobID(rawValue: row[1]), bucket: row[2], target: target,
            routingKey: row[8], body: [UInt8](row[9] as Data),
            contentType: row[10], attempts: row[11],
            nextAttempt: Timestamp(milliseconds: row[12]),
            createdAt: Timestamp(milliseconds: row[13]), lastError: row[14]
        )
    }
}
