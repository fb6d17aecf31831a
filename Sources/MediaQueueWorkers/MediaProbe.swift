import Foundation
import MediaQueueCore

/// What ffprobe reports about one file (`-show_format -show_streams`), flattened to strings.
///
/// ffprobe prints numbers and strings in JSON; CI prints every value as a string, so they are
/// kept as the text ffprobe gave.
struct MediaProbe: Sendable, Hashable {
    /// One JSON object of the report: `format` or one entry of `streams`.
    struct Section: Sendable, Hashable {
        /// Scalar fields, e.g. `codec_name`, `width`, `duration`.
        var fields: [String: String] = [:]
        /// The `tags` object, e.g. `language`, `rotate`.
        var tags: [String: String] = [:]
        /// The `side_data_list` entries (the display matrix carries `rotation`).
        var sideData: [[String: String]] = []

        subscript(_ key: String) -> String? { fields[key] }

        /// A field as a number; nil when absent or `N/A`.
        func number(_ key: String) -> Double? {
            fields[key].flatMap(Double.init).flatMap { $0.isFinite ? $0 : nil }
        }

        /// A rational field such as `30000/1001` as a number; nil when absent or unknown (`0/0`).
        func rational(_ key: String) -> Double? {
            guard let text = fields[key] else { return nil }
            let parts = text.split(separator: "/")
            guard parts.count == 2 else { return Double(text) }
            guard let numerator = Double(parts[0]), let denominator = Double(parts[1]),
                  numerator != 0, denominator != 0
            else { return nil }
            return numerator / denominator
        }
    }

    var format: Section
    var streams: [Section]

    /// The first video stream, if any.
    var video: Section? { streams.first { $0["codec_type"] == "video" } }

    /// The first audio stream, if any.
    var audio: Section? { streams.first { $0["codec_type"] == "audio" } }

    /// The playable length in seconds: the video stream's, else the container's.
    var duration: Double? { video?.number("duration") ?? format.number("duration") }

    /// The error when ffprobe's output is not the JSON it promises.
    struct MalformedReport: Error, CustomStringConvertible {
        var description: String
    }

    /// Parses `ffprobe -print_format json -show_format -show_streams` output.
    init(json: [UInt8]) throws(MalformedReport) {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(json))
        } catch {
            throw MalformedReport(description: "ffprobe printed no valid JSON: \(error)")
        }
        guard let root = object as? [String: Any] else {
            throw MalformedReport(description: "ffprobe printed JSON that is not an object")
        }
        format = Self.section(root["format"] as? [String: Any] ?? [:])
        streams = (root["streams"] as? [[String: Any]] ?? []).map(Self.section)
    }

    /// Runs ffprobe on `path` and parses its report.
    ///
    /// Throws `WorkFailure.invalidInput` with ffprobe's reason (the storage path replaced by
    /// `displayName`, so clients never see server paths), `WorkFailure.toolUnavailable` when
    /// ffprobe cannot start, or `CancellationError`.
    /// `output`: a file the job wrote (a playlist among them), read without the limits of a
    /// job's input (`FFmpegConfiguration.inputLimits`).
    static func run(path: String, displayName: String, configuration: FFmpegConfiguration, output ownFile: Bool = false) async throws -> MediaProbe {
        let output: MediaProcess.Output
        do {
            output = try await configuration.ffprobe(
                ["-v", "error", "-print_format", "json", "-show_format", "-show_streams"] + (ownFile ? [] : FFmpegConfiguration.inputLimits) + [path]
            ).run()
        } catch let error as MediaProcess.LaunchError {
            throw WorkFailure.toolUnavailable(error.description)
        }
        guard output.succeeded else {
            let reason = output.reason().replacingOccurrences(of: path, with: displayName)
            throw WorkFailure.invalidInput(FFmpegConfiguration.refusedFormat(in: reason, displayName: displayName) ?? reason)
        }
        do {
            return try MediaProbe(json: output.stdout)
        } catch {
            throw WorkFailure.invalidInput("\(displayName): \(error.description)")
        }
    }

    private static func section(_ object: [String: Any]) -> Section {
        var section = Section()
        for (key, value) in object {
            switch key {
            case "tags":
                section.tags = scalars(value as? [String: Any] ?? [:])
            case "side_data_list":
                section.sideData = (value as? [[String: Any]] ?? []).map(scalars)
            default:
                if let text = scalar(value) { section.fields[key] = text }
            }
        }
        return section
    }

    private static func scalars(_ object: [String: Any]) -> [String: String] {
        object.compactMapValues(scalar)
    }

    /// JSON strings as they are, numbers in their shortest form; objects and arrays are dropped.
    private static func scalar(_ value: Any) -> String? {
        switch value {
        case let string as String: string
        case let number as NSNumber: number.stringValue
        default: nil
        }
    }
}
