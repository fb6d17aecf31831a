import Foundation
import GRDB
public import MediaQueueCore
import MediaQueueXML

/// Media queues: the default `queue-1`, create, list, update (state, limits, callback rule), delete.
extension SQLiteJobStore {
    public func ensureDefaultQueue(bucket: String, template: MediaQueue) async throws -> MediaQueue {
        try await transaction { db in
            if let row = try Row.fetchOne(db, sql: "SELECT * FROM queues WHERE bucket = ? AND name = ?", arguments: [bucket, MediaQueue.defaultName]) {
                return try self.queue(from: row)
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
                throw CIError.queueNameTaken(queue.name)
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
            return try rows.map { try self.queue(from: $0) }
        }
    }

    public func queue(id: QueueID) async throws -> MediaQueue? {
        try await read { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM queues WHERE id = ?"), arguments: [id.rawValue]).map { try self.queue(from: $0) }
        }
    }

    public func changeQueue(id: QueueID, _ change: @escaping @Sendable (inout MediaQueue) throws(CIError) -> Void) async throws -> MediaQueue {
        try await transaction { db in
            guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM queues WHERE id = ?"), arguments: [id.rawValue]) else {
                throw CIError(.noSuchQueue, "queue \(id) does not exist", element: "QueueId")
            }
            var queue = try self.queue(from: row)
            let oldState = queue.state.rawValue
            try change(&queue)
            let taken = "SELECT 1 FROM queues WHERE bucket = ? AND name = ? AND id != ?"
            if try Bool.fetchOne(db, sql: taken, arguments: [queue.bucket, queue.name, queue.id.rawValue]) == true {
                throw CIError.queueNameTaken(queue.name)
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
            guard oldState != queue.state.rawValue else { return queue }
            let (from, to): (JobState, JobState) = queue.state == .paused ? (.submitted, .pause) : (.pause, .submitted)
            try db.execute(
                sql: "UPDATE jobs SET state = ? WHERE queue_id = ? AND state = ?",
                arguments: [to.rawValue, queue.id.rawValue, from.rawValue]
            )
            return queue
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
        queueRules.forget(id)
    }
}
