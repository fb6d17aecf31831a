import Foundation
import MediaQueueFuzzTargets
import Testing

/// Every seed and every input a fuzzer ever crashed on, run through its target's properties: a
/// crash found once stays fixed (`Fuzz/Regressions/<target>/`, one file per crash).
@Suite struct FuzzCorpusTests {
    static let fuzzFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz")

    static func inputs(_ folder: String, _ target: FuzzTarget) -> [URL] {
        let directory = fuzzFolder.appendingPathComponent(folder).appendingPathComponent(target.rawValue)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.sorted().map { directory.appendingPathComponent($0) }
    }

    @Test(arguments: FuzzTarget.allCases)
    func everySeedAndEveryPastCrashHoldsItsTargetsProperties(_ target: FuzzTarget) throws {
        let seeds = Self.inputs("Corpus", target)
        #expect(!seeds.isEmpty, "Fuzz/Corpus/\(target.rawValue) has no seed")
        for input in seeds + Self.inputs("Regressions", target) {
            target.run(Array(try Data(contentsOf: input)))
        }
    }
}
