import Foundation
import MediaQueueXML

/// CI's `<MediaInfo>` (the GetMediaInfo shape) built from an ffprobe report.
extension MediaProbe {
    /// `MediaInfo/Format` and `MediaInfo/Stream/{Video,Audio,Subtitle}`; every value a string,
    /// a field ffprobe does not report is left out.
    func mediaInfo() -> XMLTree {
        let formatElement = Self.element("Format", from: format, [
            ("NumStream", { $0["nb_streams"] }),
            ("NumProgram", { $0["nb_programs"] }),
            ("FormatName", { $0["format_name"] }),
            ("FormatLongName", { $0["format_long_name"] }),
            ("StartTime", { $0["start_time"] }),
            ("Duration", { $0["duration"] }),
            ("Bitrate", { Self.kilobits($0["bit_rate"]) }),
            ("Size", { $0["size"] }),
        ])
        var stream = XMLTree("Stream")
        for section in streams {
            switch section["codec_type"] {
            case "video": stream.children.append(Self.element("Video", from: section, Self.videoFields))
            case "audio": stream.children.append(Self.element("Audio", from: section, Self.audioFields))
            case "subtitle": stream.children.append(Self.element("Subtitle", from: section, Self.subtitleFields))
            default: break
            }
        }
        return XMLTree("MediaInfo", children: [formatElement, stream])
    }

    private typealias Field = (name: String, value: @Sendable (Section) -> String?)

    private static let videoFields: [Field] = [
        ("Index", { $0["index"] }),
        ("CodecName", { $0["codec_name"] }),
        ("CodecLongName", { $0["codec_long_name"] }),
        // ffprobe 5 no longer prints codec_time_base; older ones do.
        ("CodecTimeBase", { $0["codec_time_base"] }),
        ("CodecTagString", { $0["codec_tag_string"] }),
        ("CodecTag", { $0["codec_tag"] }),
        ("Profile", { $0["profile"] }),
        ("Height", { $0["height"] }),
        ("Width", { $0["width"] }),
        ("HasBFrame", { $0["has_b_frames"] }),
        ("RefFrames", { $0["refs"] }),
        ("Sar", { $0["sample_aspect_ratio"] }),
        ("Dar", { $0["display_aspect_ratio"] }),
        ("PixFormat", { $0["pix_fmt"] }),
        ("FieldOrder", { $0["field_order"] }),
        ("Level", { $0["level"] }),
        ("Fps", { $0.rational("r_frame_rate").map(decimal) }),
        ("AvgFps", { $0.rational("avg_frame_rate").map(decimal) }),
        ("Timebase", { $0["time_base"] }),
        ("StartTime", { $0["start_time"] }),
        ("Duration", { $0["duration"] }),
        ("Bitrate", { kilobits($0["bit_rate"]) }),
        ("NumFrames", { $0["nb_frames"] }),
        ("Language", { $0.tags["language"] }),
        ("Rotation", { rotation($0) }),
    ]

    private static let audioFields: [Field] = [
        ("Index", { $0["index"] }),
        ("CodecName", { $0["codec_name"] }),
        ("CodecLongName", { $0["codec_long_name"] }),
        ("CodecTimeBase", { $0["codec_time_base"] }),
        ("CodecTagString", { $0["codec_tag_string"] }),
        ("CodecTag", { $0["codec_tag"] }),
        ("SampleFmt", { $0["sample_fmt"] }),
        ("SampleRate", { $0["sample_rate"] }),
        ("Channel", { $0["channels"] }),
        ("ChannelLayout", { $0["channel_layout"] }),
        ("Timebase", { $0["time_base"] }),
        ("StartTime", { $0["start_time"] }),
        ("Duration", { $0["duration"] }),
        ("Bitrate", { kilobits($0["bit_rate"]) }),
        ("Language", { $0.tags["language"] }),
    ]

    private static let subtitleFields: [Field] = [
        ("Index", { $0["index"] }),
        ("Language", { $0.tags["language"] }),
    ]

    private static func element(_ name: String, from section: Section, _ fields: [Field]) -> XMLTree {
        XMLTree(name, children: fields.compactMap { field in
            guard let value = field.value(section), !value.isEmpty, value != "N/A" else { return nil }
            return XMLTree(field.name, text: value)
        })
    }

    /// CI reports bit rates in kbit/s with six decimals (`1573.345000`); ffprobe gives bit/s.
    private static func kilobits(_ bitsPerSecond: String?) -> String? {
        guard let bits = bitsPerSecond.flatMap(Double.init) else { return nil }
        return String(format: "%.6f", bits / 1000)
    }

    /// Up to three decimals, without trailing zeros (`30000/1001` fps is `29.97`).
    private static func decimal(_ value: Double) -> String {
        var text = String(format: "%.3f", value)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }

    /// Clockwise degrees in [0, 360): the legacy `rotate` tag, else the display matrix, whose
    /// `rotation` is counter-clockwise; `0` when the stream is not rotated.
    private static func rotation(_ section: Section) -> String {
        // Within one turn before the conversion: a tag is the file's text, `nan` or `1e400` too.
        func clockwise(_ degrees: Double) -> String? {
            guard degrees.isFinite else { return nil }
            return String(Int(degrees.rounded().truncatingRemainder(dividingBy: 360)).positiveModulo(360))
        }
        if let tag = section.tags["rotate"], let degrees = Double(tag), let rotation = clockwise(degrees) {
            return rotation
        }
        if let matrix = section.sideData.first(where: { $0["rotation"] != nil }),
           let degrees = matrix["rotation"].flatMap(Double.init), let rotation = clockwise(-degrees) {
            return rotation
        }
        return "0"
    }
}

extension Int {
    fileprivate func positiveModulo(_ modulus: Int) -> Int {
        ((self % modulus) + modulus) % modulus
    }
}
