import Foundation
import MediaQueueTestSupport
import Synchronization
import Testing
@testable import MediaQueueWorkers

#if canImport(Glibc)
import Glibc
#endif

/// Whether a process with this pid still exists (a zombie counts: it was not waited for).
func processExists(_ pid: Int32) -> Bool {
    kill(pid, 0) == 0 || errno != ESRCH
}

/// The pid a run reported from `onLaunch`.
final class LaunchedPID: Sendable {
    private let value = Mutex<Int32?>(nil)
    var pid: Int32? { value.withLock { $0 } }
    func set(_ pid: Int32) { value.withLock { $0 = pid } }
}

@Suite("MediaProcess", .timeLimit(.minutes(10)))
struct MediaProcessTests {
    @Test("collects stdout and reports the exit status")
    func collectsStdout() async throws {
        let output = try await MediaProcess(executable: "/bin/echo", arguments: ["hello"]).run()
        #expect(output.succeeded)
        #expect(String(decoding: output.stdout, as: UTF8.self) == "hello\n")
    }

    /// A socket a library opened without close-on-exec (rabbitmq-c's, libcurl's before) would
    /// stay open in ffmpeg for as long as it runs, its connection open to the peer after this
    /// process closed it.
    @Test("the child gets stdin, stdout and stderr and none of this process's other descriptors")
    func noInheritedDescriptors() async throws {
        let socketDescriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(socketDescriptor >= 3)
        defer { close(socketDescriptor) }
        let output = try await MediaProcess(executable: "/bin/sh", arguments: ["-c", "ls /proc/$$/fd"]).run()
        #expect(output.succeeded)
        let open = String(decoding: output.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(open == ["0", "1", "2"], "the child's descriptors")
    }

    /// A signal to the server's process group (Ctrl-C in its terminal) must not reach ffmpeg,
    /// which would end its job as failed while the server drains.
    @Test func theChildRunsInAProcessGroupOfItsOwn() async throws {
        let output = try await MediaProcess(executable: "/bin/sh", arguments: ["-c", "ps -o pgid= -p $$"]).run()
        #expect(output.succeeded)
        let childGroup = Int32(String(decoding: output.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(childGroup != nil && childGroup != getpgrp())
    }

    @Test("drains megabytes on both pipes without stalling the child")
    func largeOutputs() async throws {
        let script = "head -c 3000000 /dev/zero; head -c 3000000 /dev/zero >&2; echo done >&2"
        let process = MediaProcess(executable: "/bin/sh", arguments: ["-c", script])
        let output = try await process.run()
        #expect(output.succeeded)
        #expect(output.stdout.count == 3_000_000)
        #expect(output.stderrTail.utf8.count <= process.stderrTailLimit)
        #expect(output.stderrTail.hasSuffix("done\n"))
    }

    @Test("hands stdout over line by line, the last line without newline too")
    func lines() async throws {
        let seen = Mutex<[String]>([])
        let output = try await MediaProcess(executable: "/usr/bin/printf", arguments: ["a\\nb\\nc"])
            .run(stdout: .lines { line in seen.withLock { $0.append(String(line)) } })
        #expect(output.succeeded)
        #expect(output.stdout.isEmpty)
        #expect(seen.withLock { $0 } == ["a", "b", "c"])
    }

    @Test("a failure carries the last stderr lines, at most 500 characters")
    func failureReason() async throws {
        let script = "echo noise >&2; echo >&2; echo 'the real reason' >&2; exit 3"
        let output = try await MediaProcess(executable: "/bin/sh", arguments: ["-c", script]).run()
        #expect(!output.succeeded)
        #expect(output.status == 3)
        #expect(output.reason().hasSuffix("the real reason"))

        let long = try await MediaProcess(executable: "/bin/sh", arguments: ["-c", "head -c 2000 /dev/zero | tr '\\0' x >&2; exit 1"]).run()
        #expect(long.reason().count == 500)
    }

    @Test("the child starts with no blocked or ignored signals, so SIGTERM reaches ffmpeg")
    func childSignals() async throws {
        // Tests run on pool threads, which block most signals; the child must not inherit that.
        let output = try await MediaProcess(executable: "/bin/grep", arguments: ["-E", "^Sig(Blk|Ign):", "/proc/self/status"]).run()
        let masks = String(decoding: output.stdout, as: UTF8.self).split(separator: "\n").map {
            UInt64($0.split(separator: "\t").last ?? "", radix: 16)
        }
        // Bits 0…30 are the standard signals 1…31 (SIGTERM among them); glibc keeps its own
        // real-time signals above them to itself.
        #expect(masks.map { $0.map { $0 & 0x7FFF_FFFF } } == [0, 0])
    }

    @Test("a program that cannot start is a LaunchError")
    func launchError() async throws {
        await #expect(throws: MediaProcess.LaunchError.self) {
            try await MediaProcess(executable: "/nonexistent/ffmpeg", arguments: []).run()
        }
    }

    /// A program the kernel will not run (its interpreter is missing) is a LaunchError too, though
    /// it is the parent-death wrapper that fails to run it: not a failed job blaming its input.
    @Test("a program that exists but cannot be run is a LaunchError")
    func unrunnableProgram() async throws {
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("unrunnable-\(UUID().uuidString)").path
        try "#!/nonexistent/interpreter\n".write(toFile: script, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: script) }
        chmod(script, 0o755)
        let error = await #expect(throws: MediaProcess.LaunchError.self) {
            try await MediaProcess(executable: script, arguments: []).run()
        }
        #expect(error?.description.contains("No such file or directory") == true, "\(error.map { "\($0)" } ?? "")")
    }

    @Test("cancellation ends the child with SIGTERM and waits for it")
    func cancellationTerminates() async throws {
        let launched = LaunchedPID()
        let task = Task {
            try await MediaProcess(executable: "/bin/sleep", arguments: ["60"]).run(onLaunch: { launched.set($0) })
        }
        let pid = try await eventually("sleep started") { launched.pid }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(!processExists(pid))
    }

    @Test("a child that ignores SIGTERM gets SIGKILL after the grace period")
    func cancellationKills() async throws {
        let launched = LaunchedPID()
        let ready = Mutex(false)
        // `exec` keeps the pid, so the signal reaches the very process that ignores SIGTERM.
        let process = MediaProcess(
            executable: "/bin/sh", arguments: ["-c", "trap '' TERM; echo ready; exec sleep 60"],
            terminationGracePeriod: .milliseconds(200)
        )
        let task = Task {
            try await process.run(stdout: .lines { _ in ready.withLock { $0 = true } }, onLaunch: { launched.set($0) })
        }
        try await eventually("the child ignores SIGTERM") { ready.withLock { $0 } }
        let pid = try #require(launched.pid)
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(!processExists(pid))
    }

    @Test("a task cancelled before the run starts never launches the child")
    func cancelledBeforeStart() async throws {
        let launched = LaunchedPID()
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await MediaProcess(executable: "/bin/sleep", arguments: ["60"]).run(onLaunch: { launched.set($0) })
        }
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(launched.pid == nil)
    }
}

/// ffmpeg's `-progress` report read as a percentage, whatever it says.
@Suite struct ProgressMeterTests {
    /// A start just before a short video's end, with a longer audio stream beside it: the output
    /// runs far past the length expected, and the ratio once overflowed Int and stopped the process.
    @Test func anOutputFarLongerThanExpectedReadsAs99() {
        #expect(ProgressMeter.duration(1.1e-16).percent("out_time_us=19000000") == 99)
        #expect(ProgressMeter.duration(10).percent("out_time_us=inf") == 99)
        #expect(ProgressMeter.duration(10).percent("out_time_us=nan") == nil)
        #expect(ProgressMeter.duration(10).percent("out_time_us=5000000") == 50)
        #expect(ProgressMeter.frames(10).percent("frame=\(Int.max)") == 99)
        #expect(ProgressMeter.frames(10).percent("frame=5") == 50)
    }
}
