import MediaQueueCore
import MediaQueueXML
import Testing
@testable import MediaQueueWorkers

@Suite("SnapshotPlan and output names")
struct SnapshotPlanTests {
    func options(_ fields: [String: String]) throws -> SnapshotOptions {
        let snapshot = XMLTree("Snapshot", children: fields.sorted { $0.key < $1.key }.map { XMLTree($0.key, text: $0.value) })
        let output = XMLTree("Output", children: [XMLTree("Object", text: "s-${Number}.jpg")])
        return try SnapshotOptions(operation: XMLTree("Operation", children: [snapshot, output]))
    }

    @Test("Interval: shots before the end only, at most Count")
    func interval() throws {
        let plan = try SnapshotPlan(options: options(["Start": "1", "TimeInterval": "1", "Count": "10"]), duration: 5, frameRate: 25)
        #expect(plan.maxShots == 4, "1, 2, 3 and 4 s; 5 s is the end")
        #expect(plan.interval == 1)
        let short = try SnapshotPlan(options: options(["TimeInterval": "2", "Count": "10"]), duration: 5.02, frameRate: 25)
        #expect(short.maxShots == 3)
        let capped = try SnapshotPlan(options: options(["TimeInterval": "1", "Count": "2"]), duration: 5, frameRate: 25)
        #expect(capped.maxShots == 2)
        let unknown = try SnapshotPlan(options: options(["TimeInterval": "1", "Count": "7"]), duration: nil, frameRate: nil)
        #expect(unknown.maxShots == 7)
    }

    @Test("Interval without TimeInterval: consecutive frames, progress expects what the video holds")
    func everyFrame() throws {
        let plan = try SnapshotPlan(options: options(["Start": "3", "Count": "100"]), duration: 5, frameRate: 25)
        #expect(plan.interval == nil)
        #expect(plan.maxShots == 100)
        #expect(plan.expectedShots == 50)
    }

    @Test("Average and IsCheckCount spread Count shots from Start to the end")
    func average() throws {
        let plan = try SnapshotPlan(options: options(["Mode": "Average", "Start": "1", "Count": "4"]), duration: 5, frameRate: 25)
        #expect(plan.interval == 1)
        #expect(plan.maxShots == 4)
        let fallback = try SnapshotPlan(options: options(["TimeInterval": "2", "Count": "5", "IsCheckCount": "true"]), duration: 5, frameRate: 25)
        #expect(fallback.interval == 1)
        #expect(fallback.maxShots == 5)
        #expect(throws: WorkFailure.self) {
            try SnapshotPlan(options: options(["Mode": "Average", "Count": "4"]), duration: nil, frameRate: nil)
        }
    }

    @Test("a Start at or after the end is refused")
    func startAfterEnd() throws {
        #expect(throws: WorkFailure.invalidArgument("Operation.Snapshot.Start", "5 s is not before the end of the input (5 s)")) {
            try SnapshotPlan(options: options(["Start": "5"]), duration: 5, frameRate: 25)
        }
    }

    /// Values a client may send, and a media file may report, that once stopped the process:
    /// converting a Double that Int cannot hold traps.
    @Test("a huge Start, a tiny TimeInterval or a huge frame rate are answered, not a crash")
    func extremeValues() throws {
        #expect(throws: WorkFailure.invalidArgument("Operation.Snapshot.Start", "1e+19 s is not before the end of the input (10 s)")) {
            try SnapshotPlan(options: options(["Start": "1e19"]), duration: 10, frameRate: 25)
        }
        let tiny = try SnapshotPlan(options: options(["TimeInterval": "1e-300", "Count": "5"]), duration: 10, frameRate: 25)
        #expect(tiny.maxShots == 5 && tiny.interval == 1e-300)
        let everyFrame = try SnapshotPlan(options: options(["Count": "5"]), duration: 1e10, frameRate: 1e10)
        #expect(everyFrame.expectedShots == 5)
    }

    @Test("output names fill in every wildcard")
    func names() {
        let template = OutputObjectTemplate(template: "x/${jobid}/${InputName}-${Number}.${ext}", jobID: "j1", inputName: "movie", ext: "jpg")
        #expect(template.object(number: 12) == "x/j1/movie-12.jpg")
        #expect(template.fileExtension == "jpg")
        #expect(OutputObjectTemplate(template: "a/B-${Number}.PNG", jobID: "j", inputName: "i", ext: "jpg").fileExtension == "png")
        #expect(OutputObjectTemplate(template: "a.b/c", jobID: "j", inputName: "i", ext: "jpg").fileExtension == "")
    }
}
