import Testing
@testable import MediaQueueAMQP

/// The arena hands rabbitmq-c the C form of a publish's properties from blocks it carves up; every
/// value must read back as it was written, whether it shares a block with many others, spills into
/// a new block, or is large enough for a block of its own.
@Suite struct CArenaTests {
    static let samples: [AMQPProperties] = AMQPEncodedSizeTests.samples + [
        // Several hundred small strings: more than one block's worth.
        AMQPProperties(
            messageID: "e0123456789abcdef0123456789abcdef",
            headers: Dictionary(uniqueKeysWithValues: (0..<300).map { ("key-\($0)", AMQPFieldValue.string("value number \($0)")) })
        ),
        // Small values on both sides of a large one.
        AMQPProperties(contentType: "application/xml", headers: [
            "a": "before", "big": .bytes(Array(repeating: 9, count: 5_000)), "z": .array((0..<40).map { .string("item \($0)") }),
        ]),
    ]

    @Test(arguments: samples.indices)
    func propertiesReadBackAsWritten(_ index: Int) {
        let properties = Self.samples[index]
        let arena = CArena()
        let readBack = withExtendedLifetime(arena) { arena.properties(properties).swiftProperties }
        #expect(readBack == properties, "sample \(index)")
    }
}
