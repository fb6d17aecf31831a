import Foundation
import MediaQueueCore
import MediaQueueXML

/// The output settings of a Transcode operation (`Operation.Transcode`, or its template's):
/// `Container`, `Video`, `Audio`, `TimeInterval` and `TransConfig`, checked against CI's ranges
/// and container/codec table (spec §7.2). Concat reads the same `Container`/`Video`/`Audio`
/// from `Operation.ConcatTemplate`. Every error names the field it is about.
struct TranscodeOptions: Sendable, Hashable {
    /// `Container.Format`.
    enum Format: String, Sendable, Hashable, CaseIterable {
        case mp4, flv, hls, ts, mkv, mp3, aac, flac, webm

        /// ffmpeg's muxer.
        var muxer: String {
            switch self {
            case .mp4: "mp4"
            case .flv: "flv"
            case .hls: "hls"
            case .ts: "mpegts"
            case .mkv: "matroska"
            case .mp3: "mp3"
            case .aac: "adts"
            case .flac: "flac"
            case .webm: "webm"
            }
        }

        /// What `${ext}` stands for.
        var fileExtension: String { self == .hls ? "m3u8" : rawValue }

        /// The video codecs the container takes; empty for audio-only containers.
        var videoCodecs: [VideoCodec] {
            switch self {
            case .mp4, .hls: [.h264, .h265]
            case .flv, .ts, .mkv: [.h264]
            case .webm: [.vp8]
            case .mp3, .aac, .flac: []
            }
        }

        var audioCodecs: [AudioCodec] {
            switch self {
            case .mp4, .hls, .flv, .ts, .mkv: [.aac, .mp3]
            case .mp3: [.mp3]
            case .aac: [.aac]
            case .flac: [.flac]
            case .webm: [.vorbis, .opus]
            }
        }

        var holdsVideo: Bool { !videoCodecs.isEmpty }
    }

    enum VideoCodec: String, Sendable, Hashable, CaseIterable {
        case h264 = "H.264"
        case h265 = "H.265"
        case vp8 = "VP8"

        var encoder: String {
            switch self {
            case .h264: "libx264"
            case .h265: "libx265"
            case .vp8: "libvpx"
            }
        }

        var presets: [String] {
            self == .vp8 ? ["good", "realtime"] : ["veryfast", "fast", "medium", "slow", "slower"]
        }

        var pixelFormats: [String] {
            switch self {
            case .h264: ["yuv420p", "yuv422p", "yuv444p", "yuvj420p", "yuvj422p", "yuvj444p"]
            case .h265, .vp8: ["yuv420p"]
            }
        }
    }

    enum AudioCodec: String, Sendable, Hashable, CaseIterable {
        case aac, mp3, flac, opus
        case vorbis = "Vorbis"

        var encoder: String {
            switch self {
            case .aac: "aac"
            case .mp3: "libmp3lame"
            case .flac: "flac"
            case .opus: "libopus"
            case .vorbis: "libvorbis"
            }
        }

        var sampleRates: [Int] {
            switch self {
            case .opus: [8000, 16000, 24000, 48000]
            // LAME encodes MPEG-1/2/2.5 rates only.
            case .mp3: [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000]
            case .aac, .flac, .vorbis: [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000]
            }
        }

        var defaultSampleRate: Int { self == .opus ? 48000 : 44100 }

        var channelCounts: [Int] {
            switch self {
            case .aac, .flac: [1, 2, 4, 5, 6, 8]
            case .mp3, .opus, .vorbis: [1, 2]
            }
        }
    }

    /// `TransConfig.AdjDarMethod`: what happens when both `Width` and `Height` are set.
    enum AdjDarMethod: String, Sendable, Hashable, CaseIterable {
        /// Stretch to exactly Width x Height (square pixels).
        case scale
        /// Fill Width x Height keeping the aspect ratio, cutting off what overflows.
        case crop
        /// Fit inside Width x Height keeping the aspect ratio, black bars around.
        case pad
        /// Width x Height pixels, the display aspect ratio kept through the pixel aspect ratio.
        case none
    }

    struct Video: Sendable, Hashable {
        var codec: VideoCodec
        var width: Int?
        var height: Int?
        var fps: Double?
        /// kbit/s; used when `crf` is nil.
        var bitrate: Int?
        var crf: Double?
        var gop: Int?
        var preset: String?
        var profile: String?
        var pixelFormat: String?
        var maxrate: Int?
        var bufsize: Int?
        /// HLS segment length in seconds.
        var hlsTsTime: Double = 5
    }

    struct Audio: Sendable, Hashable {
        var codec: AudioCodec
        var sampleRate: Int
        var bitrate: Int?
        var channels: Int?
    }

    var format: Format
    /// nil when the container holds no video or `Video.Remove` is true.
    var video: Video?
    /// nil when `Audio.Remove` is true.
    var audio: Audio?
    var start: Double = 0
    var duration: Double?
    var adjDarMethod: AdjDarMethod = .none
    var deleteMetadata = false

    static let sizeRange = 128...4096

    /// Reads `element` (e.g. `<Transcode>`) whose path is `path`; `readsTimeInterval` is false for
    /// elements that have none (Concat).
    init(_ element: XMLTree?, path: String, readsTimeInterval: Bool = true) throws(CIError) {
        let fields = OperationFields(element, path: path)
        let container = fields.child("Container")
        // Not built; a job that asks for it must not silently get something else.
        try container.refuse("ClipConfig")
        guard let formatName = try container.choice("Format", Format.allCases.map(\.rawValue)) else {
            throw container.invalid("Format", "is required (one of \(Format.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        format = Format(rawValue: formatName)!

        let videoFields = fields.child("Video")
        let audioFields = fields.child("Audio")
        let removeVideo = try videoFields.bool("Remove") ?? false
        let removeAudio = try audioFields.bool("Remove") ?? false
        if format.holdsVideo {
            if removeVideo && removeAudio {
                throw videoFields.invalid("Remove", "removing both video and audio leaves nothing to write")
            }
            video = removeVideo ? nil : try Self.video(videoFields, format: format)
        } else {
            if videoFields.has("Codec") {
                throw videoFields.invalid("Codec", "the \(format.rawValue) container holds no video")
            }
            if removeAudio {
                throw audioFields.invalid("Remove", "the \(format.rawValue) container holds only audio")
            }
        }
        audio = removeAudio ? nil : try Self.audio(audioFields, format: format)

        if readsTimeInterval {
            let interval = fields.child("TimeInterval")
            start = try interval.number("Start", above: 0, inclusive: true, unit: " seconds") ?? 0
            duration = try interval.number("Duration", above: 0, unit: " seconds")
        }
        let transConfig = fields.child("TransConfig")
        if let method = try transConfig.choice("AdjDarMethod", AdjDarMethod.allCases.map(\.rawValue)) {
            adjDarMethod = AdjDarMethod(rawValue: method)!
        }
        deleteMetadata = try transConfig.bool("DeleteMetadata") ?? false
        // Not built; a job that asks for them must not silently get something else.
        let isFalse: (String) -> Bool = { $0.lowercased() == "false" }
        for name in ["IsCheckReso", "IsCheckVideoBitrate", "IsCheckAudioBitrate", "IsHdr2Sdr"] {
            try transConfig.refuse(name, unless: isFalse)
        }
        try transConfig.child("HlsEncrypt").refuse("IsHlsEncrypt", unless: isFalse)
        for name in ["AudioMix", "AudioMixArray", "Subtitles"] {
            try fields.refuse(name)
        }
    }

    private static func video(_ fields: OperationFields, format: Format) throws(CIError) -> Video {
        var codec = format.videoCodecs[0]
        if let name = fields.string("Codec") {
            guard let match = VideoCodec.allCases.first(where: { normalized($0.rawValue) == normalized(name) }) else {
                throw fields.invalid("Codec", "'\(name)' is not one of \(VideoCodec.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard format.videoCodecs.contains(match) else {
                throw fields.invalid("Codec", "\(match.rawValue) cannot go in \(format.rawValue) (it takes \(format.videoCodecs.map(\.rawValue).joined(separator: ", ")))")
            }
            codec = match
        }
        var video = Video(codec: codec)
        video.width = try evenSize(fields, "Width")
        video.height = try evenSize(fields, "Height")
        video.fps = try fields.number("Fps", above: 0, upTo: 60, unit: " frames per second")
        video.bitrate = try fields.int("Bitrate", in: 10...50_000, unit: " kbps")
        video.crf = try fields.number("Crf", above: 0, upTo: 51)
        // 0 is "automatic", as in Tencent's media processing: ffmpeg's -g 0 made every frame a key frame.
        video.gop = try fields.int("Gop", in: 0...100_000, unit: " frames").flatMap { $0 == 0 ? nil : $0 }
        // Not built; a job that asks for them must not silently get something else.
        let isOff: (String) -> Bool = { ["", "0", "false"].contains($0.lowercased()) }
        for name in ["Rotate", "Crop", "Interlaced", "Roi"] {
            try fields.refuse(name, unless: isOff)
        }
        video.preset = try fields.choice("Preset", codec.presets)
        if let profile = try fields.choice("Profile", ["baseline", "main", "high"]) {
            guard codec == .h264 else { throw fields.invalid("Profile", "applies to H.264 only") }
            video.profile = profile
        }
        video.pixelFormat = try fields.choice("Pixfmt", codec.pixelFormats)
        if let profile = video.profile, let pixelFormat = video.pixelFormat, !pixelFormat.hasSuffix("420p") {
            throw fields.invalid("Profile", "\(profile) cannot encode \(pixelFormat); leave Profile empty for 4:2:2 and 4:4:4")
        }
        video.maxrate = try fields.int("Maxrate", in: 10...50_000, unit: " kbps")
        video.bufsize = try fields.int("Bufsize", in: 1000...128_000, unit: " kb")
        if video.bufsize != nil, video.maxrate == nil {
            throw fields.invalid("Bufsize", "needs Maxrate: the encoders ignore a buffer size without a maximum rate")
        }
        try fields.refuse("ScanMode")
        // At least a second: shorter segments made ffmpeg write a file per frame, each then hashed,
        // published and listed in the job's result.
        video.hlsTsTime = try fields.number("HlsTsTime", above: 1, inclusive: true, upTo: 3600, unit: " seconds") ?? 5
        try fields.refuse("LongShortMode", unless: { $0.lowercased() == "false" })
        return video
    }

    private static func audio(_ fields: OperationFields, format: Format) throws(CIError) -> Audio {
        var codec = format.audioCodecs[0]
        if let name = fields.string("Codec") {
            guard let match = AudioCodec.allCases.first(where: { $0.rawValue.lowercased() == name.lowercased() }) else {
                throw fields.invalid("Codec", "'\(name)' is not one of \(AudioCodec.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard format.audioCodecs.contains(match) else {
                throw fields.invalid("Codec", "\(match.rawValue) cannot go in \(format.rawValue) (it takes \(format.audioCodecs.map(\.rawValue).joined(separator: ", ")))")
            }
            codec = match
        }
        try fields.refuse("SampleFormat")
        for name in ["KeepTwoTracks", "SwitchTrack"] {
            try fields.refuse(name, unless: { $0.lowercased() == "false" })
        }
        return Audio(
            codec: codec,
            sampleRate: try fields.int("Samplerate", oneOf: codec.sampleRates) ?? codec.defaultSampleRate,
            bitrate: try fields.int("Bitrate", in: 8...1000, unit: " kbps"),
            channels: try fields.int("Channels", oneOf: codec.channelCounts)
        )
    }

    private static func evenSize(_ fields: OperationFields, _ name: String) throws(CIError) -> Int? {
        guard let size = try fields.int(name, in: sizeRange, unit: " pixels") else { return nil }
        guard size % 2 == 0 else { throw fields.invalid(name, "must be an even number of pixels, not \(size)") }
        return size
    }

    /// `H.264`, `h264` and `H264` are the same codec.
    private static func normalized(_ name: String) -> String {
        name.lowercased().replacingOccurrences(of: ".", with: "")
    }
}
