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

    @Test func cStringsAreTerminatedCopies() {
        let arena = CArena()
        withExtendedLifetime(arena) {
            let strings = (0..<200).map { "queue-\($0)-" + String(repeating: "x", count: $0 % 37) } + ["", String(repeating: "ü", count: 600)]
            let pointers = strings.map { arena.cString($0) }
            #expect(zip(strings, pointers).allSatisfy { String(cString: $1) == $0 })
        }
    }
}
