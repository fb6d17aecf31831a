@testable import MediaQueueCore
import Testing

/// The queue directory remembers what it found, but not without end: anyone who may submit can
/// name buckets, and each bucket's queue-1 was remembered for the life of the process.
@Suite struct QueueDirectoryTests {
    @Test func itRemembersAtMostItsLimitAndStillFindsEveryQueue() async throws {
        let store = MemoryJobStore()
        let directory = QueueDirectory(store: store, remembered: 10) { MediaQueue(bucket: "", name: "", createTime: Timestamp(seconds: 1)) }
        var first: MediaQueue?
        for index in 0...25 {
            let queue = try await directory.defaultQueue(bucket: "b\(index)-1250000000")
            if index == 0 { first = queue }
            #expect(directory.rememberedCount <= 10)
        }
        #expect(try await directory.defaultQueue(bucket: "b0-1250000000").id == first?.id, "found again in the store")
    }
}
