internal import CRabbitMQ

/// The connection is unusable (socket error, heartbeat timeout, connection.close, protocol error):
/// the worker tears it down and reconnects. Never leaves the connection thread.
struct ConnectionDown: Error, CustomStringConvertible {
    var description: String
}

/// The one place where rabbitmq-c status codes and RPC replies become Swift errors.
enum RabbitMQStatus {
    /// The library's text for a status code (static strings, copied).
    static func text(_ status: Int32) -> String {
        guard let cString = amqp_error_string2(status) else { return "status \(status)" }
        return String(cString: cString)
    }

    static func isOK(_ status: Int32) -> Bool { status == AMQP_STATUS_OK.rawValue }
    static func isTimeout(_ status: Int32) -> Bool { status == AMQP_STATUS_TIMEOUT.rawValue }

    /// Throws `ConnectionDown` unless `status` is OK.
    static func check(_ status: Int32, _ what: StaticString) throws(ConnectionDown) {
        guard isOK(status) else { throw ConnectionDown(description: "\(what): \(text(status))") }
    }

    /// Interprets the reply of a synchronous method on `channel`.
    ///
    /// Returns nil on success and a `.channelClosed` error when the broker closed the channel (after
    /// answering close-ok, so the channel number is free again). Throws `ConnectionDown` for a
    /// connection.close (answered with close-ok) and for library failures.
    static func channelOutcome(
        of reply: amqp_rpc_reply_t,
        connection: amqp_connection_state_t,
        channel: UInt16,
        what: String
    ) throws(ConnectionDown) -> AMQPError? {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return nil
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            if reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD, let decoded = reply.reply.decoded {
                // Safe: for a channel.close reply the library decoded an amqp_channel_close_t, valid
                // until buffers are released; its fields are copied here.
                let close = decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
                let error = AMQPError(
                    .channelClosed,
                    "\(what): broker closed the channel: \(close.reply_code) \(close.reply_text.string)",
                    replyCode: close.reply_code
                )
                var ok = amqp_channel_close_ok_t()
                try check(amqp_send_method(connection, channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok), "channel.close-ok")
                return error
            }
            if reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD {
                throw connectionClosed(reply.reply.decoded, connection: connection, what: what)
            }
            throw ConnectionDown(description: "\(what): unexpected broker method \(reply.reply.id)")
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            throw ConnectionDown(description: "\(what): \(text(reply.library_error))")
        default:
            throw ConnectionDown(description: "\(what): no reply")
        }
    }

    /// Answers a connection.close with close-ok and describes it.
    static func connectionClosed(_ decoded: UnsafeMutableRawPointer?, connection: amqp_connection_state_t, what: String) -> ConnectionDown {
        var reason = "broker closed the connection"
        if let decoded {
            // Safe: for connection.close the library decoded an amqp_connection_close_t; copied at once.
            let close = decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            reason += ": \(close.reply_code) \(close.reply_text.string)"
        }
        var ok = amqp_connection_close_ok_t()
        // Best effort: the connection is being abandoned either way.
        _ = amqp_send_method(connection, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok)
        return ConnectionDown(description: "\(what): \(reason)")
    }
}
