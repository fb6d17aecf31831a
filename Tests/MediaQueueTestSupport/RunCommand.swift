import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What a command printed and how it ended.
public struct CommandOutput: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Thrown by `runCommand` when the command exits with a non-zero status.
public struct CommandFailed: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

/// Runs `executable` with `arguments` (no shell) on a thread of its own and returns its output;
/// throws `CommandFailed` on a non-zero exit unless `allowFailure` is set.
///
/// Uses `posix_spawn` and `waitpid` rather than Foundation's `Process`, whose exit detection
/// depends on SIGCHLD reaching it (seen here: a finished child left a zombie and the wait hung).
/// Output goes to temporary files, so a chatty command can never fill a pipe and stall.
@discardableResult
public func runCommand(_ executable: String, _ arguments: [String], allowFailure: Bool = false) async throws -> CommandOutput {
    let output = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<CommandOutput, any Error>) in
        let thread = Thread {
            continuation.resume(with: Result { try spawnAndWait(executable, arguments) })
        }
        thread.start()
    }
    if output.status != 0, !allowFailure {
        throw CommandFailed(description: "\(executable) \(arguments.joined(separator: " ")) exited \(output.status): \(output.stderr)")
    }
    return output
}

private func spawnAndWait(_ executable: String, _ arguments: [String]) throws -> CommandOutput {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cmd-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let outPath = folder.appendingPathComponent("out").path
    let errPath = folder.appendingPathComponent("err").path

    let pid = try spawnChild(executable, arguments) { actions in
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let exitStatus: Int32 = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    return CommandOutput(
        status: exitStatus,
        stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
        stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
    )
}

/// Starts `executable` with `posix_spawn`: standard input from /dev/null, standard output and
/// error as `redirect` sets them, no blocked signals and default handlers whatever this thread
/// has, this process's descriptors closed, and this process's environment plus `environment`.
func spawnChild(
    _ executable: String, _ arguments: [String], environment: [String: String] = [:],
    redirect: (inout posix_spawn_file_actions_t) -> Void
) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    redirect(&actions)

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
    var variables = ProcessInfo.processInfo.environment
    for (key, value) in environment { variables[key] = value }
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
    return pid
}

/// Keeps the test process's descriptors (sockets, pipes) out of children, as `Process` does: a
/// broker daemonized by a command would otherwise hold them open forever. The test process never
/// execs anything else, so close-on-exec on everything above stderr is harmless.
func markDescriptorsCloseOnExec() {
    for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
        if let descriptor = Int32(name), descriptor > 2 { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
    }
}
