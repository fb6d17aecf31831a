import Foundation

/// The ffmpeg arguments that carry out a `TranscodeOptions` (shared by Transcode and Concat).
extension TranscodeOptions {
    /// The video filters for `Width`/`Height` and `AdjDarMethod`; without them, an odd side
    /// made even for the codecs that need it, or nothing.
    func scaleFilters() -> [String] {
        guard let video else { return [] }
        switch (video.width, video.height) {
        case (nil, nil):
            // x264 and x265 refuse an odd width or height in 4:2:0 and 4:2:2 (a 1279x719 screen
            // recording): such a side loses its last pixel.
            guard video.codec != .vp8, !(video.pixelFormat ?? "").hasSuffix("444p") else { return [] }
            return ["scale=trunc(iw/2)*2:trunc(ih/2)*2"]
        case (let width?, nil):
            // -2: the other side follows the aspect ratio, rounded to an even size.
            return ["scale=\(width):-2"]
        case (nil, let height?):
            return ["scale=-2:\(height)"]
        case (let width?, let height?):
            switch adjDarMethod {
            case .none:
                return ["scale=\(width):\(height)"]
            case .scale:
                return ["scale=\(width):\(height)", "setsar=1"]
            case .crop:
                return ["scale=\(width):\(height):force_original_aspect_ratio=increase", "crop=\(width):\(height)", "setsar=1"]
            case .pad:
                return [
                    "scale=\(width):\(height):force_original_aspect_ratio=decrease",
                    "pad=\(width):\(height):(ow-iw)/2:(oh-ih)/2", "setsar=1",
                ]
            }
        }
    }

    /// Encoder settings of the video stream (no filters, no mapping).
    func videoCodecArguments() -> [String] {
        guard let video else { return [] }
        var arguments = ["-c:v", video.codec.encoder]
        if let fps = video.fps { arguments += ["-r", String(fps)] }
        switch video.codec {
        case .h264, .h265:
            // CI's default: CRF 25 when no bitrate is given; Crf wins over Bitrate.
            if let crf = video.crf {
                arguments += ["-crf", String(crf)]
            } else if let bitrate = video.bitrate {
                arguments += ["-b:v", "\(bitrate)k"]
            } else {
                arguments += ["-crf", "25"]
            }
            arguments += ["-preset", video.preset ?? "medium"]
            if let profile = video.profile { arguments += ["-profile:v", profile] }
            if video.codec == .h265 {
                arguments += ["-x265-params", "log-level=error"]
                // The tag Apple players need for HEVC in MP4.
                if format == .mp4 || format == .hls { arguments += ["-tag:v", "hvc1"] }
            }
        case .vp8:
            // libvpx's CRF is a quality target under a bitrate cap, and its scale is 4...63.
            if let crf = video.crf {
                arguments += ["-crf", String(min(63, max(4, Int(crf.rounded())))), "-b:v", "\(video.bitrate ?? 2000)k"]
            } else if let bitrate = video.bitrate {
                arguments += ["-b:v", "\(bitrate)k"]
            } else {
                arguments += ["-crf", "25", "-b:v", "2000k"]
            }
            let preset = video.preset ?? "good"
            arguments += ["-deadline", preset]
            if preset == "realtime" { arguments += ["-cpu-used", "8"] }
        }
        if let gop = video.gop { arguments += ["-g", String(gop)] }
        if let maxrate = video.maxrate {
            // x264 and x265 ignore a maximum rate without a buffer to hold it over: two seconds
            // of it unless one is given.
            arguments += ["-maxrate", "\(maxrate)k", "-bufsize", "\(video.bufsize ?? 2 * maxrate)k"]
        }
        // 4:2:0 unless asked otherwise: what players expect, whatever the source has.
        arguments += ["-pix_fmt", video.pixelFormat ?? "yuv420p"]
        if format == .hls {
            // Key frames where segments should start, so segments are HlsTsTime long.
            arguments += ["-force_key_frames", "expr:gte(t,n_forced*\(String(video.hlsTsTime)))"]
        }
        return arguments
    }

    /// Encoder settings of the audio stream.
    func audioCodecArguments() -> [String] {
        guard let audio else { return [] }
        var arguments = ["-c:a", audio.codec.encoder, "-ar", String(audio.sampleRate)]
        if let bitrate = audio.bitrate, audio.codec != .flac { arguments += ["-b:a", "\(bitrate)k"] }
        if let channels = audio.channels { arguments += ["-ac", String(channels)] }
        return arguments
    }

    /// Container settings and the output; for HLS, `segmentPattern` names the ts segments.
    func containerArguments(output: String, segmentPattern: String?) -> [String] {
        var arguments: [String] = []
        if deleteMetadata { arguments += ["-map_metadata", "-1", "-map_chapters", "-1"] }
        switch format {
        case .mp4:
            arguments += ["-movflags", "+faststart"]
        case .hls:
            arguments += [
                "-hls_time", String(video?.hlsTsTime ?? 5), "-hls_list_size", "0", "-hls_playlist_type", "vod",
                "-hls_segment_type", "mpegts",
            ]
            if let segmentPattern { arguments += ["-hls_segment_filename", segmentPattern] }
        default:
            break
        }
        return arguments + ["-f", format.muxer, output]
    }
}
