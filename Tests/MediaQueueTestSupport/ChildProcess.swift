import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A program the test starts and may kill, e.g. the real `mediaqueue serve` for crash tests.
/// Its output goes to a log file, so it never blocks on a full pipe.
public final class ChildProcess: Sendable {
    public let pid: Int32
    public let logPath: String
    private let stopped = Mutex(false)

    /// Starts `executable` with `arguments` and this process's environment plus `environment`.
    public init(_ executable: String, _ arguments: [String], environment: [String: String], logPath: String) throws {
        pid = try spawnChild(executable, arguments, environment: environment) { actions in
            posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        self.logPath = logPath
    }

    /// Sends `signal` (default SIGKILL) and waits (off the cooperative pool) until the process is
    /// gone; returns its exit code, or nil when a signal ended it (or it was stopped before). Once
    /// it has been reaped its pid may be another process's: a second call does nothing.
    @discardableResult
    public func stop(_ signal: Int32 = 9) async -> Int32? {
        guard stopped.withLock({ stopped in defer { stopped = true }; return !stopped }) else { return nil }
        kill(pid, signal)
        let pid = self.pid
        let status = await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
            Thread {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                continuation.resume(returning: status)
            }.start()
        }
        // WIFEXITED / WEXITSTATUS, which Swift does not import.
        return status & 0x7f == 0 ? (status >> 8) & 0xff : nil
    }

    /// Waits (off the cooperative pool) until the process ends by itself; returns the signal that
    /// ended it, or nil when it exited.
    public func waitForExit() async -> Int32? {
        let pid = self.pid
        let status = await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
            Thread {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                continuation.resume(returning: status)
            }.start()
        }
        stopped.withLock { $0 = true }
        // WIFSIGNALED / WTERMSIG, which Swift does not import.
        let signal = status & 0x7f
        return signal != 0 && signal != 0x7f ? signal : nil
    }

    /// Sends SIGKILL without waiting (for `defer`, where nothing can be awaited); a later `stop`
    /// still reaps it.
    public func terminate() {
        guard !stopped.withLock({ $0 }) else { return }
        kill(pid, SIGKILL)
    }

    /// The end of what the process printed, for failure messages.
    public var logTail: String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return String(text.suffix(2000))
    }
}
