public import MediaQueueCore
import MediaQueueXML
import PostgresNIO

/// Media queues: the default `queue-1`, create, list, update (state, limits, callback rule), delete.
extension PostgresJobStore {
    public func ensureDefaultQueue(bucket: String, template: MediaQueue) async throws -> MediaQueue {
        var queue = template
        queue.bucket = bucket
        queue.name = MediaQueue.defaultName
        let candidate = queue
        return try await transaction { connection in
            // Nodes may create it at once: the first insert wins and every node reads that one.
            try await Self.insertQueue(candidate, ifAbsent: true, connection, logger: logger)
            let select: PostgresQuery = "SELECT \(unescaped: Self.queueColumns) FROM queues WHERE bucket = \(bucket) AND name = \(MediaQueue.defaultName)"
            guard let row = try await connection.row(select, logger: logger) else {
                throw CIError(.internalError, "queue-1 of \(bucket) vanished while it was created")
            }
            return try self.queue(from: row)
        }
    }

    public func createQueue(_ queue: MediaQueue) async throws {
        try await transaction { connection in
            let exists: PostgresQuery = "SELECT 1 FROM queues WHERE bucket = \(queue.bucket) AND name = \(queue.name)"
            if try await connection.row(exists, logger: logger) != nil {
                throw CIError.queueNameTaken(queue.name)
            }
            try await Self.insertQueue(queue, ifAbsent: false, connection, logger: logger)
        }
    }

    static func insertQueue(_ queue: MediaQueue, ifAbsent: Bool, _ connection: PostgresConnection, logger: Logger) async throws {
        let insert: PostgresQuery = """
            INSERT INTO queues (id, bucket, name, state, max_concurrent, max_size, category, notify_config, create_time, update_time)
            VALUES (\(queue.id.rawValue), \(queue.bucket), \(queue.name), \(queue.state.rawValue), \(queue.maxConcurrent),
                \(queue.maxSize), \(queue.category), \(queue.notifyConfig.xml.xmlString()), \(queue.createTime.milliseconds),
                \(queue.updateTime.milliseconds))
            \(unescaped: ifAbsent ? "ON CONFLICT (bucket, name) DO NOTHING" : "")
            """
        try await connection.run(insert, logger: logger)
    }

    public func queues(bucket: String?) async throws -> [MediaQueue] {
        try await read { connection in
            let select: PostgresQuery = if let bucket {
                "SELECT \(unescaped: Self.queueColumns) FROM queues WHERE bucket = \(bucket) ORDER BY ordinal"
            } else {
                "SELECT \(unescaped: Self.queueColumns) FROM queues ORDER BY ordinal"
            }
            return try await connection.rows(select, logger: logger).map { try self.queue(from: $0) }
        }
    }

    public func queue(id: QueueID) async throws -> MediaQueue? {
        try await read { connection in
            let select: PostgresQuery = "SELECT \(unescaped: Self.queueColumns) FROM queues WHERE id = \(id.rawValue)"
            return try await connection.row(select, logger: logger).map { try self.queue(from: $0) }
        }
    }

    public func changeQueue(id: QueueID, _ change: @escaping @Sendable (inout MediaQueue) throws(CIError) -> Void) async throws -> MediaQueue {
        try await transaction { connection in
            // The row lock orders this change with claims, which lock the queues they claim from,
            // and with other changes, which read the queue only once they hold it.
            let lock: PostgresQuery = "SELECT \(unescaped: Self.queueColumns) FROM queues WHERE id = \(id.rawValue) FOR UPDATE"
            guard let row = try await connection.row(lock, logger: logger) else {
                throw CIError(.noSuchQueue, "queue \(id) does not exist", element: "QueueId")
            }
            var queue = try self.queue(from: row)
            let oldState = queue.state.rawValue
            try change(&queue)
            // A rename racing another to the same name loses on the unique key, runs again and
            // finds it here.
            let taken: PostgresQuery = "SELECT 1 FROM queues WHERE bucket = \(queue.bucket) AND name = \(queue.name) AND id <> \(queue.id.rawValue)"
            if try await connection.row(taken, logger: logger) != nil { throw CIError.queueNameTaken(queue.name) }
            try await connection.run(
                """
                UPDATE queues SET name = \(queue.name), state = \(queue.state.rawValue), max_concurrent = \(queue.maxConcurrent),
                    max_size = \(queue.maxSize), category = \(queue.category), notify_config = \(queue.notifyConfig.xml.xmlString()),
                    update_time = \(queue.updateTime.milliseconds)
                WHERE id = \(queue.id.rawValue)
                """,
                logger: logger
            )
            guard oldState != queue.state.rawValue else { return queue }
            let (from, to): (JobState, JobState) = queue.state == .paused ? (.submitted, .pause) : (.pause, .submitted)
            try await connection.run(
                "UPDATE jobs SET state = \(to.rawValue) WHERE queue_id = \(queue.id.rawValue) AND state = \(from.rawValue)",
                logger: logger
            )
            return queue
        }
    }

    public func deleteQueue(id: QueueID) async throws {
        try await transaction { connection in
            let lock: PostgresQuery = "SELECT 1 FROM queues WHERE id = \(id.rawValue) FOR UPDATE"
            guard try await connection.row(lock, logger: logger) != nil else {
                throw CIError(.noSuchQueue, "queue \(id) does not exist", element: "QueueId")
            }
            let unfinished: PostgresQuery = """
                SELECT 1 FROM jobs WHERE queue_id = \(id.rawValue) AND state IN ('Submitted', 'Pause', 'Running') LIMIT 1
                """
            if try await connection.row(unfinished, logger: logger) != nil {
                throw CIError(.invalidArgument, "queue \(id) still holds unfinished jobs", element: "QueueId")
            }
            try await connection.run("DELETE FROM queues WHERE id = \(id.rawValue)", logger: logger)
        }
        queueRules.forget(id)
    }
}
