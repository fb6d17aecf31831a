import Foundation
import Synchronization

/// Writes the write-ahead log to disk every `interval`, on a thread of its own.
///
/// Why: with `synchronous = NORMAL`, SQLite syncs the log only when it checkpoints it into the
/// database (every 8,192 pages here), and that sync then had up to 32 MiB to write while the one
/// writer, and every transaction queued behind it, waited. On a disk shared with RabbitMQ's own
/// syncs it took up to a few hundred milliseconds, which became the slowest jobs' latency (p99 at
/// 4,500 jobs/s: 64–226 ms in the shared harness, 32–41 ms with this). Synced as it grows, the
/// log leaves the checkpoint's sync little to do. As a side effect a commit reaches the disk
/// within about `interval` even if the machine loses power; SQLite's own guarantees are unchanged.
final class WALFlusher: Sendable {
    private let stopped = Atomic<Bool>(false)
    private let ended = Atomic<Bool>(false)

    /// Whether the thread has ended (after `stop`).
    var hasEnded: Bool { ended.load(ordering: .relaxed) }

    init(databasePath: String, interval: Duration = .milliseconds(100)) {
        let walPath = databasePath + "-wal"
        let microseconds = UInt32(interval.components.seconds * 1_000_000 + interval.components.attoseconds / 1_000_000_000_000)
        let thread = Thread { [self] in
            while !stopped.load(ordering: .relaxed) {
                usleep(microseconds)
                // Opened each time: SQLite removes the log when the last connection closes and
                // creates a new one later.
                let descriptor = open(walPath, O_RDONLY | O_CLOEXEC)
                guard descriptor >= 0 else { continue }
                fdatasync(descriptor)
                close(descriptor)
            }
            ended.store(true, ordering: .relaxed)
        }
        thread.name = "MediaQueue WAL flusher"
        thread.start()
    }

    /// Ends the thread within one interval.
    func stop() {
        stopped.store(true, ordering: .relaxed)
    }
}
