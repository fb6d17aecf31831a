@testable import MediaQueueCore
import Testing

@Suite struct IdentifierTests {
    static func isHexID(_ id: String, prefix: Character) -> Bool {
        id.utf8.count == 33 && id.first == prefix && id.dropFirst().allSatisfy { "0123456789abcdef".contains($0) }
    }

    /// Many buffers' worth of random words (the generator refills every 256 ids), from several
    /// tasks at once: every id is well formed and none repeats.
    @Test func idsFromManyTasksAreWellFormedAndDistinct() async {
        let perTask = 5_000
        let ids = await withTaskGroup(of: [String].self) { group in
            for task in 0..<4 {
                group.addTask {
                    (0..<perTask).map { index in
                        (task + index).isMultiple(of: 2) ? JobID.generate().rawValue : QueueID.generate().rawValue
                    }
                }
            }
            return await group.reduce(into: []) { $0 += $1 }
        }
        #expect(ids.count == 4 * perTask)
        #expect(Set(ids).count == ids.count)
        #expect(ids.allSatisfy { Self.isHexID($0, prefix: "j") || Self.isHexID($0, prefix: "p") })
    }

    /// Job ids start with the time, so a later id sorts after an earlier one (the store's index
    /// appends them), while the random part differs within one millisecond.
    @Test func jobIDsSortByCreationTime() {
        let now = Int64(1_800_000_000_000)
        #expect(timeOrderedHex32(at: now) < timeOrderedHex32(at: now + 1))
        #expect(timeOrderedHex32(at: now + 999) < timeOrderedHex32(at: now + 1000))
        let sameMillisecond = (0..<100).map { _ in JobID.generate().rawValue }
        #expect(Set(sameMillisecond.map { $0.suffix(20) }).count == 100)
    }
}
