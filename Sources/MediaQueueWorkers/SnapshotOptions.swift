import MediaQueueCore
import MediaQueueXML

/// A Snapshot operation's `Operation.Snapshot` and `Operation.Output.Object`, checked against
/// CI's ranges (spec §7.3). Every error names the element it is about.
struct SnapshotOptions: Sendable, Hashable {
    /// How shot times are chosen.
    enum Mode: String, Sendable, Hashable {
        /// From `Start`, every `TimeInterval` seconds (or every frame without one), up to `Count`.
        case interval = "Interval"
        /// `Count` shots evenly spaced from `Start` to the end.
        case average = "Average"
    }

    var mode: Mode = .interval
    var start: Double = 0
    var timeInterval: Double?
    var count: Int = 1
    var width: Int?
    var height: Int?
    /// In Interval mode, fall back to Average when the video is too short for `Count` shots.
    var isCheckCount = false
    /// The `Output.Object` template, e.g. `out/snap-${Number}.jpg`.
    var outputObject: String

    static let countRange = 1...10_000
    static let sizeRange = 128...4096
    static let maxTimeInterval = 3600.0

    /// Reads the stored `<Operation>` element; `requireOutputObject()` has already checked the key
    /// at submission, this re-reads it for the run.
    init(operation: XMLTree) throws(CIError) {
        guard let output = operation.text("Output", "Object")?.trimmed, !output.isEmpty else {
            throw Self.invalid("Operation.Output.Object", "is required")
        }
        outputObject = output
        let snapshot = operation["Snapshot"] ?? XMLTree("Snapshot")

        if let text = Self.value(snapshot, "Mode") {
            guard let mode = Mode(rawValue: text) else {
                throw Self.invalid("Operation.Snapshot.Mode", "'\(text)' is not supported yet (supported: Interval, Average)")
            }
            self.mode = mode
        }
        if let text = Self.value(snapshot, "Start") {
            guard let start = Double(text), start.isFinite, start >= 0 else {
                throw Self.invalid("Operation.Snapshot.Start", "must be a number of seconds ≥ 0, not '\(text)'")
            }
            self.start = start
        }
        if let text = Self.value(snapshot, "TimeInterval") {
            guard let interval = Double(text), interval > 0, interval <= Self.maxTimeInterval else {
                throw Self.invalid("Operation.Snapshot.TimeInterval", "must be in (0, 3600] seconds, not '\(text)'")
            }
            timeInterval = interval
        }
        if let text = Self.value(snapshot, "Count") {
            guard let count = Int(text), Self.countRange.contains(count) else {
                throw Self.invalid("Operation.Snapshot.Count", "must be an integer in (0, 10000], not '\(text)'")
            }
            self.count = count
        }
        width = try Self.size(snapshot, "Width")
        height = try Self.size(snapshot, "Height")
        if let text = Self.value(snapshot, "IsCheckCount") {
            isCheckCount = text.lowercased() == "true"
        }
        // Sprites and per-shot image processing are not built; refusing beats ignoring them.
        if let text = Self.value(snapshot, "SnapshotOutMode"), text != "OnlySnapshot" {
            throw Self.invalid("Operation.Snapshot.SnapshotOutMode", "'\(text)' is not supported yet (supported: OnlySnapshot)")
        }
        if Self.value(snapshot, "CIParam") != nil {
            throw Self.invalid("Operation.Snapshot.CIParam", "is not supported yet; choose the image format by the output extension (.jpg or .png)")
        }
        if count > 1, !outputObject.contains(OutputObjectTemplate.number) {
            throw Self.invalid("Operation.Output.Object", "must contain ${Number} when Count is more than 1")
        }
    }

    /// A field's trimmed text; nil when absent or empty (CI treats empty as unset).
    private static func value(_ snapshot: XMLTree, _ name: String) -> String? {
        guard let text = snapshot.text(name)?.trimmed, !text.isEmpty else { return nil }
        return text
    }

    private static func size(_ snapshot: XMLTree, _ name: String) throws(CIError) -> Int? {
        guard let text = value(snapshot, name) else { return nil }
        guard let size = Int(text), sizeRange.contains(size) else {
            throw invalid("Operation.Snapshot.\(name)", "must be an integer in [128, 4096] pixels, not '\(text)'")
        }
        return size
    }

    /// The same shape as MediaQueueCore's `CIError.invalid`, which is internal there.
    static func invalid(_ element: String, _ message: String) -> CIError {
        CIError(.invalidArgument, "\(element): \(message)", element: element)
    }
}

extension String {
    var trimmed: String {
        var text = Substring(self)
        while let first = text.first, first.isWhitespace { text.removeFirst() }
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return String(text)
    }
}
