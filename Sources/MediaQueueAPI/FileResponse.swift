import Foundation
public import Hummingbird
public import MediaQueueCore
import NIOCore
import NIOPosix

/// Response bodies that send a storage's file in chunks, whatever its size, and release it (its
/// opened descriptor closed, its downloaded copy removed) when the body is released, written or
/// not.
public enum FileResponse {
    /// A body of bytes `bytes` of the object whose file (or part, `ReadableFile.firstByte`) is
    /// `file`.
    public static func body(_ file: ReadableFile, bytes: Range<Int>, storage: any ObjectStorage) -> ResponseBody {
        let fetched = FetchedObject(file, storage: storage)
        return ResponseBody(contentLength: bytes.count) { writer in
            let handle = try await BlockingFileWork.run { () throws -> FileHandle in
                guard let handle = fetched.file.opened ?? FileHandle(forReadingAtPath: fetched.file.path) else {
                    throw CIError(.internalError, "the object's file is gone")
                }
                try handle.seek(toOffset: UInt64(bytes.lowerBound - fetched.file.firstByte))
                return handle
            }
            defer { if fetched.file.opened == nil { try? handle.close() } }
            var left = bytes.count
            while left > 0 {
                let wanted = min(left, BlockingFileWork.chunkBytes)
                guard let chunk = try await BlockingFileWork.run({ try handle.read(upToCount: wanted) }), !chunk.isEmpty else { break }
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

/// Reads and writes of files, which block their thread for as long as the disk takes, run on
/// NIO's pool for blocking work: on Swift's cooperative pool (a thread per core) each would hold
/// a core's share of every other request and of the engine.
enum BlockingFileWork {
    /// The bytes read or written in one go.
    static let chunkBytes = 1024 * 1024

    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(body)
    }
}
