import Foundation
import MediaQueueCore
import MediaQueueTestSupport
import MediaQueueXML
import Testing
@testable import MediaQueueWorkers

/// Small inputs for the workers that SampleMedia does not make (all with ffmpeg's lavfi sources,
/// tiny and short, so the suite stays quick).
enum TestMedia {
    /// H.264 (key frame every `keyFrameEvery` frames) with optional AAC, `seconds` long.
    static func video(
        at path: String, seconds: Double = 2, size: String = "160x120", rate: Int = 25, keyFrameEvery: Int = 25, audio: Bool = true
    ) async throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var arguments = [
            "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", "testsrc=duration=\(seconds):size=\(size):rate=\(rate)",
        ]
        if audio { arguments += ["-f", "lavfi", "-i", "sine=frequency=440:duration=\(seconds)"] }
        arguments += ["-c:v", "libx264", "-preset", "ultrafast", "-g", String(keyFrameEvery), "-pix_fmt", "yuv420p"]
        if audio { arguments += ["-c:a", "aac", "-shortest"] }
        try await runCommand("/usr/bin/ffmpeg", arguments + [path])
    }
}

/// What ffprobe says about a file: the format section and the streams, as strings.
struct Probed {
    var format: [String: String]
    var streams: [[String: String]]

    var video: [String: String]? { streams.first { $0["codec_type"] == "video" } }
    var audio: [String: String]? { streams.first { $0["codec_type"] == "audio" } }
    var duration: Double? { format["duration"].flatMap(Double.init) }

    init(_ path: String, countFrames: Bool = false) async throws {
        var arguments = ["-v", "error", "-print_format", "json", "-show_format", "-show_streams"]
        if countFrames { arguments.append("-count_frames") }
        let output = try await runCommand("/usr/bin/ffprobe", arguments + [path])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        func strings(_ object: Any?) -> [String: String] {
            (object as? [String: Any] ?? [:]).compactMapValues { value in
                (value as? String) ?? (value as? NSNumber)?.stringValue
            }
        }
        format = strings(json["format"])
        streams = (json["streams"] as? [Any] ?? []).map(strings)
    }
}

/// The objects a MediaResult lists in `OutputFile` (or `SpriteOutputFile` inside it), and the MD5
/// it gives for each.
func listedFiles(_ result: WorkResult, sprites: Bool = false) throws -> (names: [String], md5s: [String: String]) {
    var file = try #require(result.mediaResult?["OutputFile"])
    if sprites { file = try #require(file["SpriteOutputFile"]) }
    var md5s: [String: String] = [:]
    for info in file.all("Md5Info") {
        md5s[info.text("ObjectName") ?? ""] = info.text("Md5")
    }
    return (file.all("ObjectName").map(\.text), md5s)
}

/// Checks every listed MD5 against md5sum of the stored object.
func expectMD5sMatch(_ result: WorkResult, in bucket: TemporaryBucket, sprites: Bool = false) async throws {
    let (names, md5s) = try listedFiles(result, sprites: sprites)
    #expect(Set(names) == Set(md5s.keys))
    for name in names {
        let md5sum = try await runCommand("/usr/bin/md5sum", [bucket.path(name)]).stdout.prefix(32)
        #expect(md5s[name] == String(md5sum), "MD5 of \(name)")
    }
}

/// A stand-in for ffmpeg that records its pid and then hangs: a stuck job.
func hangingFFmpeg(in bucket: TemporaryBucket) async throws -> (path: String, pidFile: String) {
    let pidFile = bucket.root + "/ffmpeg.pid"
    let path = bucket.root + "/hanging-ffmpeg"
    try await writeScript(at: path, "echo $$ > '\(pidFile)'\nexec sleep 600")
    return (path, pidFile)
}

/// A wrapper around the real ffmpeg that records its pid (`exec` keeps it ffmpeg's own).
func recordingFFmpeg(in bucket: TemporaryBucket) async throws -> (path: String, pidFile: String) {
    let pidFile = bucket.root + "/ffmpeg.pid"
    let path = bucket.root + "/recording-ffmpeg"
    try await writeScript(at: path, "echo $$ > '\(pidFile)'\nexec /usr/bin/ffmpeg \"$@\"")
    return (path, pidFile)
}

/// Writes an executable shell script from a child shell. Written from this process, the file
/// could still be open for writing in a child another test forks at that moment (until it
/// execs), and running the script would then fail with ETXTBSY.
func writeScript(at path: String, _ body: String) async throws {
    try await runCommand("/bin/sh", ["-c", "printf '%s\\n' \"$1\" > \"$2\" && chmod 755 \"$2\"", "sh", "#!/bin/sh\n" + body, path])
}

/// The pid a wrapper wrote, once it is there.
func recordedPID(_ pidFile: String) async throws -> Int32 {
    try await eventually("ffmpeg started") {
        (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }
}

/// Runs `job` on `worker` in a task, cancels it once ffmpeg runs, and checks the outcome: a
/// CancellationError, no ffmpeg left, and no file but the inputs.
func expectCancellationCleansUp(
    worker: some MediaWorker, job: Job, bucket: TemporaryBucket, pidFile: String, inputs: [String]
) async throws {
    let context = makeContext(bucket)
    let task = Task { try await worker.run(job, context: context) }
    let pid = try await recordedPID(pidFile)
    // ffmpeg has opened its output once the staging folder holds a file.
    try await eventually("ffmpeg writes") {
        bucket.objects().contains { !inputs.contains($0) }
    }
    task.cancel()
    await #expect(throws: CancellationError.self) { try await task.value }
    #expect(!processExists(pid))
    #expect(bucket.objects() == inputs.sorted())
}

/// Runs `job` on `worker` whose ffprobe and ffmpeg hang, and lets its time limit pass on a
/// manual clock once a tool runs: the job fails with `JobTimeout`, the hanging tool is gone and
/// nothing is left behind.
func expectTimeoutFails(
    makeWorker: (FFmpegConfiguration) -> some MediaWorker, job: (TemporaryBucket) throws -> Job, bucket: TemporaryBucket, inputs: [String]
) async throws {
    let tool = try await hangingFFmpeg(in: bucket)
    let worker = makeWorker(FFmpegConfiguration(ffmpegPath: tool.path, ffprobePath: tool.path, jobTimeout: .milliseconds(500)))
    let job = try job(bucket)
    let clock = ManualTimeSource()
    let context = makeContext(bucket, time: clock)
    let run = Task { await workFailure { try await worker.run(job, context: context) } }
    let pid = try await recordedPID(tool.pidFile)
    await clock.sleepers(atLeast: 1)
    clock.advance(by: .milliseconds(500))
    let failure = await run.value
    #expect(failure?.code == "JobTimeout")
    #expect(failure?.message.contains("0.5 s") == true)
    // MediaProcess reaps its child before the run returns.
    #expect(!processExists(pid))
    #expect(bucket.objects() == inputs.sorted())
}
