import CSpawn
import Dispatch
import Foundation
import Synchronization

// Linux only (the Debian deployment): posix_spawn, poll and waitid as glibc declares them.
import Glibc

/// Runs one external program (ffmpeg, ffprobe) to completion without blocking Swift's cooperative
/// pool, and ends it when the calling task is cancelled.
///
/// Each run has one thread of its own that drains the child's stdout and stderr together while
/// it runs (so a program that writes a lot to either pipe never stalls on a full pipe buffer) and
/// then waits for it. The run finishes only once both pipes reached end of file and the child has
/// been reaped: when `run` returns or throws, no child of this run is left behind.
///
/// Cancellation sends SIGTERM (ffmpeg then stops and closes its outputs), and SIGKILL after
/// `terminationGracePeriod` if the child is still there; `run` then throws `CancellationError`.
struct MediaProcess: Sendable {
    /// How the child's stdout is consumed.
    enum StdoutHandling: Sendable {
        /// Keep every byte and return it in `Output.stdout` (ffprobe's JSON).
        case collect
        /// Hand each line to the closure as it arrives and keep nothing (ffmpeg's `-progress`).
        case lines(@Sendable (Substring) -> Void)
    }

    /// What a finished run produced.
    struct Output: Sendable {
        /// The exit status, or the signal number when `uncaughtSignal` is true.
        var status: Int32
        /// Whether the child was ended by a signal rather than by exiting.
        var uncaughtSignal: Bool
        /// Everything the child wrote to stdout, when `StdoutHandling.collect` was asked for.
        var stdout: [UInt8]
        /// The last `stderrTailLimit` bytes the child wrote to stderr.
        var stderrTail: String

        var succeeded: Bool { status == 0 && !uncaughtSignal }

        /// The last meaningful lines of stderr, at most `limit` characters, for a job's `Message`.
        func reason(limit: Int = 500) -> String {
            let lines = stderrTail.split(whereSeparator: \.isNewline)
                .map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
            var text = lines.suffix(3).joined(separator: "; ")
            if text.isEmpty {
                text = uncaughtSignal ? "ended by signal \(status)" : "exited with status \(status)"
            }
            if text.count > limit {
                text = "…" + text.suffix(limit - 1)
            }
            return text
        }
    }

    /// Why a program could not be started at all.
    struct LaunchError: Error, CustomStringConvertible {
        var executable: String
        var reason: String
        var description: String { "cannot run \(executable): \(reason)" }
    }

    var executable: String
    var arguments: [String]
    /// How long a cancelled child may take to stop after SIGTERM before it gets SIGKILL.
    var terminationGracePeriod: Duration = .seconds(2)
    /// How much of stderr is kept; the end is what explains a failure.
    var stderrTailLimit = 16 * 1024

    /// Runs the program and waits for it; throws `CancellationError` when the task was cancelled
    /// (after the child is gone) and `LaunchError` when it could not start.
    ///
    /// `onLaunch` receives the child's pid once it runs (tests use it to check that the child is
    /// gone afterwards).
    func run(
        stdout handling: StdoutHandling = .collect,
        onLaunch: @escaping @Sendable (Int32) -> Void = { _ in }
    ) async throws -> Output {
        let run = Run(grace: terminationGracePeriod, stderrLimit: stderrTailLimit, handling: handling)
        let output = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Output, any Error>) in
                run.start(executable: executable, arguments: arguments, continuation: continuation, onLaunch: onLaunch)
            }
        } onCancel: {
            run.cancel()
        }
        if run.wasCancelled { throw CancellationError() }
        // The wrapper could not run the program (a format the kernel refuses, a busy file): as
        // when posix_spawn itself fails, the service's trouble, not the job's input.
        if !output.uncaughtSignal, [126, 127].contains(output.status), output.stderrTail.hasPrefix("setpriv: ") {
            throw LaunchError(executable: executable, reason: output.stderrTail.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return output
    }
}

extension MediaProcess {
    /// The shared state of one run: the child's pid, what its pipes delivered, and whether it was
    /// cancelled or has exited. Everything mutable sits in one `Mutex`, touched by the launching
    /// task, the thread that drives the child and the cancellation handler.
    private final class Run: Sendable {
        private struct State {
            var pid: pid_t = 0
            var exited = false
            var cancelled = false
            var stdout: [UInt8] = []
            var stderr: [UInt8] = []
        }

        private let state = Mutex(State())
        private let grace: Duration
        private let stderrLimit: Int
        private let handling: StdoutHandling

        init(grace: Duration, stderrLimit: Int, handling: StdoutHandling) {
            self.grace = grace
            self.stderrLimit = stderrLimit
            self.handling = handling
        }

        var wasCancelled: Bool { state.withLock { $0.cancelled } }

        func start(
            executable: String,
            arguments: [String],
            continuation: CheckedContinuation<Output, any Error>,
            onLaunch: @escaping @Sendable (Int32) -> Void
        ) {
            // Cancelled before the child exists: never start it.
            if state.withLock({ $0.cancelled }) {
                continuation.resume(throwing: CancellationError())
                return
            }
            // One thread spawns the child and drives it, and ends only once the child has
            // exited: the child's parent-death signal goes with the thread that spawned it, so
            // one of Swift's pool, which may end while the child runs, would kill it early.
            let thread = Thread { [self] in
                let child: (pid: pid_t, stdout: Int32, stderr: Int32)
                do {
                    child = try Self.spawn(executable, arguments)
                } catch {
                    continuation.resume(throwing: error)
                    return
                }
                let cancelledMeanwhile = state.withLock { state in
                    state.pid = child.pid
                    return state.cancelled
                }
                Thread.current.name = "MediaProcess \(child.pid)"
                onLaunch(child.pid)
                // A cancellation that raced with the launch found no pid to signal; signal now.
                if cancelledMeanwhile { terminate() }
                let output = drive(pid: child.pid, stdout: child.stdout, stderr: child.stderr)
                continuation.resume(returning: output)
            }
            thread.start()
        }

        func cancel() {
            let launched = state.withLock { state in
                state.cancelled = true
                return state.pid != 0
            }
            if launched { terminate() }
        }

        /// SIGTERM now, SIGKILL after the grace period unless the child exited meanwhile.
        private func terminate() {
            signalIfRunning(SIGTERM)
            let nanoseconds = grace.components.seconds * 1_000_000_000 + grace.components.attoseconds / 1_000_000_000
            DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(nanoseconds))) { [self] in
                signalIfRunning(SIGKILL)
            }
        }

        /// `exited` is set before the child is reaped (see `drive`), so a signal sent under the
        /// lock while it is false can only reach our child, never a process that reused its pid.
        private func signalIfRunning(_ signal: Int32) {
            state.withLock { state in
                if state.pid != 0, !state.exited { _ = kill(state.pid, signal) }
            }
        }

        /// Starts the child with posix_spawn rather than Foundation's `Process`, for two reasons:
        /// a child inherits the spawning thread's signal mask, and threads of Swift's pool block
        /// SIGTERM, so ffmpeg would never see the polite stop; and a server that ignores SIGTERM
        /// itself (to handle it through a dispatch source) would pass SIG_IGN on. The child
        /// starts with no blocked signals and default handlers.
        ///
        /// Pipe ends are close-on-exec, so they never leak into another child (which would hold
        /// our pipe open, and this run, until that child ends). Glibc's `pipe2` is not visible to
        /// Swift, so the flag is set right after `pipe`; `spawnLock` keeps our own concurrent
        /// spawns out of that window.
        private static func spawn(_ executable: String, _ arguments: [String]) throws -> (pid: pid_t, stdout: Int32, stderr: Int32) {
            try spawnLock.withLock { _ in try spawnLocked(executable, arguments) }
        }

        private static let spawnLock = Mutex(())

        private static func makePipe() -> [Int32]? {
            var ends: [Int32] = [-1, -1]
            guard pipe(&ends) == 0 else { return nil }
            for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
            return ends
        }

        /// Sets the child's parent-death signal before it runs the program (`posix_spawn` cannot):
        /// a server killed outright (the OOM killer, a crash, SIGKILL outside systemd or a
        /// container) takes its ffmpeg with it, instead of leaving it to write, for as long as it
        /// runs, into a staging folder the job's next run has made again.
        static let parentDeathWrapper = "/usr/bin/setpriv"

        private static func spawnLocked(_ executable: String, _ arguments: [String]) throws -> (pid: pid_t, stdout: Int32, stderr: Int32) {
            // Checked here, as the wrapper would only report it from the child.
            guard access(executable, X_OK) == 0 else { throw LaunchError(executable: executable, reason: errorText()) }
            guard let stdoutPipe = makePipe() else { throw LaunchError(executable: executable, reason: errorText()) }
            guard let stderrPipe = makePipe() else {
                let reason = errorText()
                stdoutPipe.forEach { _ = close($0) }
                throw LaunchError(executable: executable, reason: reason)
            }
            // Only the read ends stay in this process.
            defer {
                _ = close(stdoutPipe[1])
                _ = close(stderrPipe[1])
            }

            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            // ffmpeg reads commands from stdin; give it nothing to read.
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, stdoutPipe[1], 1)
            posix_spawn_file_actions_adddup2(&actions, stderrPipe[1], 2)
            // Nothing else of this process: descriptors that libraries opened without
            // close-on-exec (libcurl's and rabbitmq-c's sockets) would otherwise stay open in
            // ffmpeg for as long as it runs, a connection closed here still open to its peer.
            _ = cspawn_addclosefrom(&actions, 3)

            var attributes = posix_spawnattr_t()
            posix_spawnattr_init(&attributes)
            defer { posix_spawnattr_destroy(&attributes) }
            var noSignals = sigset_t()
            sigemptyset(&noSignals)
            posix_spawnattr_setsigmask(&attributes, &noSignals)
            var allSignals = sigset_t()
            sigfillset(&allSignals)
            sigdelset(&allSignals, SIGKILL)
            sigdelset(&allSignals, SIGSTOP)
            posix_spawnattr_setsigdefault(&attributes, &allSignals)
            // A process group of its own: a Ctrl-C in the server's terminal (or a signal to its
            // whole group) is the server's to handle, which lets running jobs finish as it
            // drains; the child, signalled too, would end its job as failed.
            posix_spawnattr_setpgroup(&attributes, 0)
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

            let wrapped = access(parentDeathWrapper, X_OK) == 0
            let program = wrapped ? parentDeathWrapper : executable
            let words = (wrapped ? [parentDeathWrapper, "--pdeathsig", "KILL", "--", executable] : [executable]) + arguments
            let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
            defer { argv.forEach { free($0) } }
            var pid: pid_t = 0
            let result = posix_spawn(&pid, program, &actions, &attributes, argv, environ)
            guard result == 0 else {
                _ = close(stdoutPipe[0])
                _ = close(stderrPipe[0])
                throw LaunchError(executable: executable, reason: String(cString: strerror(result)))
            }
            return (pid, stdoutPipe[0], stderrPipe[0])
        }

        private static func errorText() -> String { String(cString: strerror(errno)) }

        /// Runs on the child's own thread: drains both pipes until EOF (one `poll` loop, so a
        /// child that fills either pipe never stalls), then waits for the child to exit.
        private func drive(pid: pid_t, stdout: Int32, stderr: Int32) -> Output {
            var descriptors = [pollfd(fd: stdout, events: Int16(POLLIN), revents: 0), pollfd(fd: stderr, events: Int16(POLLIN), revents: 0)]
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            var partialLine: [UInt8] = []
            var open = 2
            while open > 0 {
                if poll(&descriptors, nfds_t(descriptors.count), -1) < 0 {
                    if errno == EINTR { continue }
                    break
                }
                for index in descriptors.indices where descriptors[index].fd >= 0 && descriptors[index].revents != 0 {
                    let descriptor = descriptors[index].fd
                    let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                    if count < 0, errno == EINTR || errno == EAGAIN { continue }
                    if count <= 0 {
                        // EOF, or a read error, which ends the stream too: the exit status still tells.
                        _ = close(descriptor)
                        descriptors[index].fd = -1
                        open -= 1
                    } else if descriptor == stdout {
                        consumeStdout(chunk[..<count], partialLine: &partialLine)
                    } else {
                        appendStderr(chunk[..<count])
                    }
                }
            }
            for entry in descriptors where entry.fd >= 0 { _ = close(entry.fd) }
            if !partialLine.isEmpty, case .lines(let onLine) = handling {
                onLine(Substring(String(decoding: partialLine, as: UTF8.self)))
            }

            // Wait without reaping, mark the child exited, then reap: a late SIGKILL can then
            // never hit a process that reused the pid.
            var info = siginfo_t()
            while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0, errno == EINTR {}
            state.withLock { $0.exited = true }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0, errno == EINTR {}
            // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import.
            let signal = status & 0x7F
            let signalled = signal != 0 && signal != 0x7F

            return state.withLock { state in
                Output(
                    status: signalled ? signal : (status >> 8) & 0xFF,
                    uncaughtSignal: signalled,
                    stdout: state.stdout,
                    stderrTail: String(decoding: state.stderr.suffix(stderrLimit), as: UTF8.self)
                )
            }
        }

        private func consumeStdout(_ data: ArraySlice<UInt8>, partialLine: inout [UInt8]) {
            switch handling {
            case .collect:
                state.withLock { $0.stdout.append(contentsOf: data) }
            case .lines(let onLine):
                partialLine.append(contentsOf: data)
                guard let lastNewline = partialLine.lastIndex(of: UInt8(ascii: "\n")) else { return }
                let complete = String(decoding: partialLine[...lastNewline], as: UTF8.self)
                partialLine.removeSubrange(...lastNewline)
                for line in complete.split(whereSeparator: \.isNewline) { onLine(line) }
            }
        }

        private func appendStderr(_ data: ArraySlice<UInt8>) {
            state.withLock { state in
                state.stderr.append(contentsOf: data)
                // Keep twice the limit before trimming so trimming is rare.
                if state.stderr.count > 2 * stderrLimit {
                    state.stderr.removeFirst(state.stderr.count - stderrLimit)
                }
            }
        }
    }
}
