#if canImport(Glibc)
import Glibc
#endif

/// Where a download's body goes: an open file, up to a byte limit.
///
/// `@unchecked Sendable`: created by the calling task, then written only by the loop thread
/// (inside libcurl's write callback) until the transfer completes; the caller reads `written`
/// after its continuation resumed, which orders those reads after the writes.
final class DownloadSink: @unchecked Sendable {
    let descriptor: Int32
    let maxBytes: Int
    private(set) var written = 0
    /// Set when the body went past `maxBytes`; the transfer was stopped there.
    private(set) var exceeded = false
    /// Set when write(2) failed.
    private(set) var writeError: Int32?

    init(descriptor: Int32, maxBytes: Int) {
        self.descriptor = descriptor
        self.maxBytes = maxBytes
    }

    /// Appends a chunk; false stops the transfer (too long, or the file cannot be written).
    func write(_ chunk: UnsafeRawBufferPointer) -> Bool {
        guard written + chunk.count <= maxBytes else {
            exceeded = true
            return false
        }
        var offset = 0
        while offset < chunk.count {
            let count = Glibc.write(descriptor, chunk.baseAddress! + offset, chunk.count - offset)
            if count < 0 {
                if errno == EINTR { continue }
                writeError = errno
                return false
            }
            offset += count
        }
        written += chunk.count
        return true
    }
}
