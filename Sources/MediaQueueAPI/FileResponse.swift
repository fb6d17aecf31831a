import Foundation
public import Hummingbird
public import MediaQueueCore
import NIOCore

/// Response bodies that send a storage's file in chunks, whatever its size, and release it (its
/// opened descriptor closed, its downloaded copy removed) when the body is released, written or
/// not.
public enum FileResponse {
    /// A body of bytes `bytes` of the object whose file (or part, `ReadableFile.firstByte`) is
    /// `file`.
    public static func body(_ file: ReadableFile, bytes: Range<Int>, storage: any ObjectStorage) -> ResponseBody {
        let fetched = FetchedObject(file, storage: storage)
        return ResponseBody(contentLength: bytes.count) { writer in
            guard let handle = fetched.file.opened ?? FileHandle(forReadingAtPath: fetched.file.path) else {
                throw CIError(.internalError, "the object's file is gone")
            }
            defer { if fetched.file.opened == nil { try? handle.close() } }
            try handle.seek(toOffset: UInt64(bytes.lowerBound - fetched.file.firstByte))
            var left = bytes.count
            while left > 0, let chunk = try handle.read(upToCount: min(left, 256 * 1024)), !chunk.isEmpty {
                left -= chunk.count
                try await writer.write(ByteBuffer(bytes: chunk))
            }
            try await writer.finish(nil)
        }
    }

    /// Releases a file that no body will send.
    public static func release(_ file: ReadableFile, storage: any ObjectStorage) {
        _ = FetchedObject(file, storage: storage)
    }
}

/// A file held by a response body until the body is released.
private final class FetchedObject: Sendable {
    let file: ReadableFile
    let storage: any ObjectStorage

    init(_ file: ReadableFile, storage: any ObjectStorage) {
        self.file = file
        self.storage = storage
    }

    deinit {
        try? file.opened?.close()
        if let folder = file.temporaryFolder { storage.removeStagingFolder(folder) }
    }
}
