public import MediaQueueAMQP
public import ServiceLifecycle

/// Runs an `AMQPConnection` as a service: the connection's thread lives as long as the group.
///
/// Listed after the services that use the connection, so on shutdown it is stopped last and the
/// intake's and relay's final acks and publishes still go out.
public struct AMQPConnectionService: Service {
    public let connection: AMQPConnection

    public init(_ connection: AMQPConnection) {
        self.connection = connection
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            try await connection.run()
        }
    }
}
