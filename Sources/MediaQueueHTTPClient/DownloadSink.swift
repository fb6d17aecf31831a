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

/// Where a PUT's body comes from: a region of an open file, or bytes in memory.
///
/// `@unchecked Sendable`: as `DownloadSink`, read only by the loop thread (inside libcurl's read
/// callback) once the transfer is submitted.
final class UploadSource: @unchecked Sendable {
    private let descriptor: Int32?
    private let bytes: [UInt8]
    private var offset: Int
    private var remaining: Int
    /// Set when pread(2) failed.
    private(set) var readError: Int32?
    let length: Int

    init(descriptor: Int32, region: FileRegion) {
        self.descriptor = descriptor
        bytes = []
        offset = region.offset
        remaining = region.length
        length = region.length
    }

    init(bytes: [UInt8]) {
        descriptor = nil
        self.bytes = bytes
        offset = 0
        remaining = bytes.count
        length = bytes.count
    }

    /// Fills `buffer` with the next bytes; 0 at the end, nil when the file cannot be read.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        let count = min(buffer.count, remaining)
        guard count > 0, let base = buffer.baseAddress else { return 0 }
        guard let descriptor else {
            bytes.withUnsafeBytes { source in
                base.copyMemory(from: source.baseAddress! + offset, byteCount: count)
            }
            offset += count
            remaining -= count
            return count
        }
        while true {
            let read = pread(descriptor, base, count, off_t(offset))
            if read < 0 && errno == EINTR { continue }
            guard read > 0 else {
                readError = read < 0 ? errno : EIO
                return nil
            }
            offset += read
            remaining -= read
            return read
        }
    }
}
