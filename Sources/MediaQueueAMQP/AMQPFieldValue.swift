/// A value in an AMQP field table (message headers, queue and exchange arguments).
///
/// Integers are sent as signed 64-bit values; received integers of any width arrive as `.int`,
/// floats as `.double`, timestamps as `.int` and decimals as `.double`.
public enum AMQPFieldValue: Sendable, Hashable {
    case string(String)
    case int(Int64)
    case bool(Bool)
    case double(Double)
    case table([String: AMQPFieldValue])
    case array([AMQPFieldValue])
    case bytes([UInt8])
}

/// An AMQP field table.
public typealias AMQPTable = [String: AMQPFieldValue]

extension AMQPFieldValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByFloatLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
}
