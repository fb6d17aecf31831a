import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A program the test starts and may kill, e.g. the real `mediaqueue serve` for crash tests.
/// Its output goes to a log file, so it never blocks on a full pipe.
public final class ChildProcess: Sendable {
    public let pid: Int32
    public let logPath: String

    /// Starts `executable` with `arguments` and this process's environment plus `environment`.
    public init(_ executable: String, _ arguments: [String], environment: [String: String], logPath: String) throws {
        var variables = ProcessInfo.processInfo.environment
        for (key, value) in environment { variables[key] = value }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        markDescriptorsCloseOnExec()
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid = pid_t()
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw CommandFailed(description: "could not start \(executable): \(String(cString: strerror(result)))")
        }
        self.pid = pid
        self.logPath = logPath
    }

    /// Sends `signal` (default SIGKILL) and waits (off the cooperative pool) until the process is gone.
    public func stop(_ signal: Int32 = 9) async {
        kill(pid, signal)
        let pid = self.pid
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                continuation.resume()
            }.start()
        }
    }

    /// The end of what the process printed, for failure messages.
    public var logTail: String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return String(text.suffix(2000))
    }
}
