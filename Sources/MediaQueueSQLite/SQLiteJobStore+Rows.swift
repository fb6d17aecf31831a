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

    static func job(_ row: Row) throws -> Job {
        let lease: Job.Lease? = (row["lease_owner"] as String?).flatMap { owner in
            (row["lease_expires"] as Int64?).map { Job.Lease(owner: owner, expiresAt: Timestamp(milliseconds: $0)) }
        }
        return Job(
            id: JobID(rawValue: row["id"]),
            bucket: row["bucket"],
            queueID: QueueID(rawValue: row["queue_id"]),
            tag: row["tag"],
            state: JobState(rawValue: row["state"]) ?? .failed,
            jobLevel: row["job_level"],
            sequence: row["seq"],
            input: try XMLDocumentParser.parse(row["input"] as String),
            operation: try XMLDocumentParser.parse(row["operation"] as String),
            callback: try callback(row["callback"]),
            creationTime: Timestamp(milliseconds: row["creation_time"]),
            startTime: (row["start_time"] as Int64?).map(Timestamp.init(milliseconds:)),
            endTime: (row["end_time"] as Int64?).map(Timestamp.init(milliseconds:)),
            progress: row["progress"],
            code: row["code"],
            message: row["message"],
            mediaResult: try (row["media_result"] as String?).map { try XMLDocumentParser.parse($0) },
            mediaInfo: try (row["media_info"] as String?).map { try XMLDocumentParser.parse($0) },
            lease: lease,
            attempts: row["attempts"],
            cancelRequested: row["cancel_requested"]
        )
    }

    static func insert(_ job: Job, _ db: Database) throws -> Int64 {
        try db.cachedStatement(sql: """
            INSERT INTO jobs (id, bucket, queue_id, tag, state, job_level, input, operation, callback,
                creation_time, start_time, end_time, progress, code, message)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(
            arguments: [
                job.id.rawValue, job.bucket, job.queueID.rawValue, job.tag, job.state.rawValue, job.jobLevel,
                job.input.xmlString(), job.operation.xmlString(), callbackXML(job.callback),
                job.creationTime.milliseconds, job.startTime?.milliseconds, job.endTime?.milliseconds,
                job.progress, job.code, job.message,
            ]
        )
        return db.lastInsertedRowID
    }

    static func callbackXML(_ callback: CallbackOverride) -> String {
        var children: [XMLTree] = []
        if let url = callback.url { children.append(XMLTree("CallBack", text: url)) }
        if let format = callback.format { children.append(XMLTree("CallBackFormat", text: format.rawValue)) }
        if let type = callback.type { children.append(XMLTree("CallBackType", text: type.rawValue)) }
        if let mq = callback.mq {
            children.append(XMLTree("CallBackMqConfig", children: [
                XMLTree("MqMode", text: mq.mode.rawValue), XMLTree("MqName", text: mq.name), XMLTree("MqRegion", text: mq.region),
            ]))
        }
        return XMLTree("Request", children: children).xmlString()
    }

    static func callback(_ xml: String) throws -> CallbackOverride {
        try CallbackOverride(request: XMLDocumentParser.parse(xml))
    }

    static func queue(_ row: Row) throws -> MediaQueue {
        MediaQueue(
            id: QueueID(rawValue: row["id"]),
            bucket: row["bucket"],
            name: row["name"],
            state: MediaQueue.State(rawValue: row["state"]) ?? .active,
            maxConcurrent: row["max_concurrent"],
            maxSize: row["max_size"],
            category: row["category"],
            notifyConfig: try NotifyConfig(xml: XMLDocumentParser.parse(row["notify_config"] as String)),
            createTime: Timestamp(milliseconds: row["create_time"]),
            updateTime: Timestamp(milliseconds: row["update_time"])
        )
    }

    static func outboxEntry(_ row: Row) -> OutboxEntry {
        let target: CallbackTarget.Destination
        if (row["kind"] as String) == "url" {
            target = .url(row["url"] ?? "")
        } else {
            target = .mq(
                mode: NotifyConfig.MqMode(rawValue: row["mq_mode"] ?? "") ?? .queue,
                name: row["mq_name"] ?? "", region: row["mq_region"] ?? ""
            )
        }
        return OutboxEntry(
            id: row["id"], jobID: JobID(rawValue: row["job_id"]), bucket: row["bucket"], target: target,
            routingKey: row["routing_key"], body: [UInt8](row["body"] as Data),
            contentType: row["content_type"], attempts: row["attempts"],
            nextAttempt: Timestamp(milliseconds: row["next_attempt"]),
            createdAt: Timestamp(milliseconds: row["created_at"]), lastError: row["last_error"]
        )
    }
}
