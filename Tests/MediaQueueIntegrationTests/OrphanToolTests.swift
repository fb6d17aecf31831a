import Foundation
import MediaQueueApp
import MediaQueueTestSupport
import Testing

/// `serve` killed outright (the OOM killer, a crash) takes the ffmpeg or ffprobe it runs with it:
/// left running, it wrote into a staging folder that the job's next run had made again.
@Suite(.timeLimit(.minutes(5))) struct OrphanToolTests {
    @Test(.enabled(if: CrashTests.binary != nil, "needs MEDIAQUEUE_TEST_MEDIAQUEUE_BINARY (scripts/test.sh sets it)"))
    func aServerKilledOutrightTakesTheToolItRunsWithIt() async throws {
        let harness = try ServiceHarness()
        let configuration = harness.configuration
        try harness.placeFakeInput()
        // A tool that says who it is, then runs until it is killed.
        let pidFile = configuration.dataDir + "/tool.pid"
        let tool = try harness.tool("tool", "echo $$ > '\(pidFile)'\nexec sleep 600")
        let binary = try #require(CrashTests.binary)
        let serve = try ChildProcess(
            binary, ["serve"], environment: harness.serveEnvironment(["MEDIAQUEUE_FFPROBE": tool, "MEDIAQUEUE_FFMPEG": tool]),
            logPath: configuration.dataDir + "/serve.log"
        )
        defer { Task { await serve.stop() } }
        try await harness.waitForIntake()
        try await harness.publish(mediaInfoRequest(userData: "orphan"))
        let pid = try await eventually("the tool to start") { () -> pid_t? in
            (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        #expect(Self.isRunning(pid))

        _ = await serve.stop(SIGKILL)
        try await eventually("the tool to end with its server") { !Self.isRunning(pid) }
    }

    /// Whether `pid` is a live process (a zombie waiting to be reaped is not).
    static func isRunning(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")")
        else { return false }
        let state = stat[stat.index(close, offsetBy: 2)...].prefix(1)
        return state != "Z" && state != "X"
    }
}
