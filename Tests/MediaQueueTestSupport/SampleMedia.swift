import Foundation

/// Media files for worker tests, made on the spot with the real ffmpeg.
public enum SampleMedia {
    /// Writes an H.264/AAC MP4 of `seconds` seconds (ffmpeg's `testsrc` picture and a 440 Hz
    /// tone) to `path`, creating its folder.
    public static func makeVideo(
        at path: String, seconds: Int = 5, size: String = "320x240", rate: Int = 25, ffmpeg: String = "/usr/bin/ffmpeg"
    ) async throws {
        try createFolder(of: path)
        try await runCommand(ffmpeg, [
            "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", "testsrc=duration=\(seconds):size=\(size):rate=\(rate)",
            "-f", "lavfi", "-i", "sine=frequency=440:duration=\(seconds)",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", path,
        ])
    }

    /// Writes `count` pseudo-random bytes, the same every time, to `path`: a file no demuxer
    /// recognises, whatever its name.
    public static func makeCorruptFile(at path: String, count: Int = 64 * 1024) throws {
        try createFolder(of: path)
        // The same bytes every time (xorshift64 from a fixed seed): fresh random bytes now and
        // then look enough like some format for ffprobe to accept them.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let bytes = (0..<count).map { _ -> UInt8 in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return UInt8(truncatingIfNeeded: state >> 32)
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// The codec and size of the first video stream (or image) in `path`, as ffprobe sees it.
    public static func videoStream(of path: String, ffprobe: String = "/usr/bin/ffprobe") async throws -> (codec: String, width: Int, height: Int) {
        let output = try await runCommand(ffprobe, [
            "-v", "error", "-select_streams", "v:0",
            "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", path,
        ])
        let fields = output.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",")
        guard fields.count == 3, let width = Int(fields[1]), let height = Int(fields[2]) else {
            throw CommandFailed(description: "unexpected ffprobe output for \(path): \(output.stdout)")
        }
        return (String(fields[0]), width, height)
    }

    private static func createFolder(of path: String) throws {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }
}
