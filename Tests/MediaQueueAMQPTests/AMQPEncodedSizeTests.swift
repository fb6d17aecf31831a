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

    /// What rabbitmq-c writes for `properties` into `capacity` bytes: the size, or its error (< 0).
    func encoded(_ properties: AMQPProperties, capacity: Int) -> Int {
        let arena = CArena()
        return withExtendedLifetime(arena) {
            var c = arena.properties(properties)
            var buffer = [UInt8](repeating: 0, count: capacity)
            return Int(buffer.withUnsafeMutableBytes { raw in
                amqp_encode_properties(UInt16(AMQP_BASIC_CLASS), &c, amqp_bytes_t(len: raw.count, bytes: raw.baseAddress))
            })
        }
    }

    @Test(arguments: samples.indices)
    func theCheckedSizeIsTheSizeRabbitMQCEncodes(_ index: Int) {
        let properties = Self.samples[index]
        let written = encoded(properties, capacity: AMQPProperties.requestedFrameMax)
        #expect(written > 0, "rabbitmq-c could not encode sample \(index): \(written)")
        #expect(properties.encodedSize == written, "sample \(index)")
    }

    /// The room a header frame leaves for properties (`maxEncodedSize`): rabbitmq-c encodes a
    /// frame's properties into the frame buffer after the 12 bytes of class, weight and body size,
    /// and the frame's own 8 bytes of type, channel, size and end marker are around them.
    @Test func propertiesOfExactlyTheCheckedLimitFitTheRoomAFrameLeavesAndOneByteMoreDoesNot() {
        func filling(_ extra: Int) -> AMQPProperties {
            var properties = AMQPProperties(messageID: "m", headers: ["fill": ""])
            properties.headers["fill"] = .string(String(repeating: "f", count: AMQPProperties.maxEncodedSize() - properties.encodedSize + extra))
            return properties
        }
        let room = AMQPProperties.requestedFrameMax - 8 - 12
        #expect(AMQPProperties.maxEncodedSize() == room)
        #expect(encoded(filling(0), capacity: room) == room)
        #expect(encoded(filling(1), capacity: room) < 0, "one byte over the room")
        #expect(filling(1).encodingProblem(frameMax: AMQPProperties.requestedFrameMax) != nil)
        #expect(filling(0).encodingProblem(frameMax: AMQPProperties.requestedFrameMax) == nil)
    }
}
