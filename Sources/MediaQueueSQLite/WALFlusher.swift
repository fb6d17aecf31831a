import Foundation
import Synchronization

/// Writes the write-ahead log's new pages to disk every `interval`, on a thread of its own.
///
/// Why: with `synchronous = NORMAL`, SQLite syncs the log only when it checkpoints it into the
/// database, and that sync then had all the log's new pages to write (up to 32 MiB when a
/// checkpoint came every 8,192 pages) while the one writer, and every transaction queued behind
/// it, waited. On a disk shared with RabbitMQ's own
/// syncs it took up to a few hundred milliseconds, which became the slowest jobs' latency (p99 at
/// 4,500 jobs/s: 64–226 ms in the shared harness, 39–46 ms with this). Written out as it grows,
/// the log leaves the checkpoint's sync little to do. This is only write-back of data pages
/// (no metadata, no disk cache flush): SQLite's durability is exactly what it was.
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
                writeBack(descriptor)
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

/// Writes a file's dirty pages to disk and waits for them, without a journal commit:
/// `sync_file_range(fd, 0, 0, WAIT_BEFORE | WRITE | WAIT_AFTER)` (Swift's Glibc module does not
/// import it, so it is looked up once). An fdatasync every interval cost the service 3–4 % of its
/// throughput at full load; only starting the write-back (WRITE alone) left the checkpoint's
/// sync waiting for it (p99 38–160 ms).
private func writeBack(_ descriptor: Int32) {
    _ = syncFileRange?(descriptor, 0, 0, 7)
}

private let syncFileRange: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32)? = {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sync_file_range") else { return nil }
    return unsafeBitCast(symbol, to: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32).self)
}()
