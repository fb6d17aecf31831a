import MediaQueueCore
import MediaQueueXML

/// A Segment operation's `Operation.Segment`: `Format`, `Duration`, `StartTime`, `EndTime`
/// (spec §7.4). Segmenting remuxes (stream copy); it never re-encodes, so cuts fall on key
/// frames at or after each `Duration` boundary.
struct SegmentOptions: Sendable, Hashable {
    enum Format: String, Sendable, Hashable, CaseIterable {
        case hls, m3u8, mp4, ts, mkv

        var isPlaylist: Bool { self == .hls || self == .m3u8 }

        var muxer: String {
            switch self {
            case .hls, .m3u8: "hls"
            case .mp4: "mp4"
            case .ts: "mpegts"
            case .mkv: "matroska"
            }
        }

        var fileExtension: String { isPlaylist ? "m3u8" : rawValue }
    }

    var format: Format
    /// Seconds per segment; nil writes one file (non-HLS) or 10 s segments (HLS).
    var duration: Int?
    var startTime: Double = 0
    var endTime: Double?
    /// The `Output.Object` template.
    var outputObject: String

    static let playlistDefaultDuration = 10

    init(operation: XMLTree) throws(CIError) {
        if operation.text("TemplateId")?.trimmed.isEmpty == false {
            // No Segment templates exist; this names the unknown or foreign one.
            _ = try SystemTemplates.resolve(operation, tag: "Segment", container: "Segment")
        }
        let fields = OperationFields(operation["Segment"], path: "Operation.Segment")
        guard let format = try fields.choice("Format", Format.allCases.map(\.rawValue)) else {
            if let text = fields.string("Format") {
                throw fields.invalid("Format", "'\(text)' is not supported")
            }
            throw fields.invalid("Format", "is required (one of \(Format.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        self.format = Format(rawValue: format)!
        duration = try fields.int("Duration", in: 5...86_400, unit: " seconds")
        startTime = try fields.number("StartTime", above: 0, inclusive: true, unit: " seconds") ?? 0
        endTime = try fields.number("EndTime", above: 0, unit: " seconds")
        if let endTime, endTime <= startTime {
            throw fields.invalid("EndTime", "must be after StartTime")
        }
        try fields.child("HlsEncrypt").refuse("IsHlsEncrypt", unless: { $0.lowercased() == "false" })
        guard let object = operation.text("Output", "Object")?.trimmed, !object.isEmpty else {
            throw OperationFields.invalid("Operation.Output.Object", "is required")
        }
        outputObject = object
        if duration != nil, !self.format.isPlaylist, !object.contains(OutputObjectTemplate.number) {
            throw OperationFields.invalid("Operation.Output.Object", "must contain ${Number} when Duration splits a \(format) output")
        }
    }
}
