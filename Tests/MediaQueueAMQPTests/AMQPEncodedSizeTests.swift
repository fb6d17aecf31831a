import CRabbitMQ
import Testing
@testable import MediaQueueAMQP

/// The size a publish is checked by (`AMQPProperties.encodedSize`) is the size rabbitmq-c writes
/// into the content header frame, to the byte: counted too low, a publish over the frame would
/// reach rabbitmq-c and drop the connection; counted too high, a publish that fits would be
/// refused. rabbitmq-c's own encoder (the one the connection uses) is the reference.
@Suite struct AMQPEncodedSizeTests {
    static let samples: [AMQPProperties] = [
        AMQPProperties(),
        AMQPProperties(persistent: true),
        AMQPProperties(contentType: "application/xml", messageID: "m-1", correlationID: "c", priority: 9, timestamp: 1_700_000_000),
        {
            var all = AMQPProperties(contentType: "t", messageID: "i", correlationID: "c", persistent: true, priority: 0, timestamp: 0)
            all.contentEncoding = "gzip"
            all.replyTo = "amq.rabbitmq.reply-to"
            all.type = "TaskFinish"
            all.appID = "mediaqueue"
            all.expiration = "60000"
            return all
        }(),
        AMQPProperties(headers: ["s": "text", "wörd": "ü€", "empty": ""]),
        AMQPProperties(headers: ["i": .int(-1), "max": .int(.max), "b": true, "d": 0.5]),
        AMQPProperties(headers: ["bytes": .bytes([]), "more": .bytes(Array(repeating: 7, count: 300))]),
        AMQPProperties(headers: [
            "table": .table(["nested": .table(["deeper": .array([.int(1), "x", false])]), "empty": .table([:])]),
            "array": .array(["a", .int(2), .table(["k": false]), .array([]), .bytes([1])]),
        ]),
        AMQPProperties(messageID: String(repeating: "m", count: 255), headers: ["fill": .string(String(repeating: "f", count: 120_000))]),
    ]

    @Test(arguments: samples.indices)
    func theCheckedSizeIsTheSizeRabbitMQCEncodes(_ index: Int) {
        let properties = Self.samples[index]
        let arena = CArena()
        var c = arena.properties(properties)
        var buffer = [UInt8](repeating: 0, count: AMQPProperties.requestedFrameMax)
        let written = buffer.withUnsafeMutableBytes { raw in
            amqp_encode_properties(UInt16(AMQP_BASIC_CLASS), &c, amqp_bytes_t(len: raw.count, bytes: raw.baseAddress))
        }
        #expect(written > 0, "rabbitmq-c could not encode sample \(index): \(written)")
        #expect(properties.encodedSize == Int(written), "sample \(index)")
    }
}
