import Foundation
import MediaQueueCore
import MediaQueueTestSupport
import Synchronization
import Testing
@testable import MediaQueueWorkers

/// Hashing a job's outputs reads them whole: on Swift's cooperative threads (one per core), as
/// many outputs as cores being hashed held up everything else the process does there (the API,
/// its health probes, the engine) for as long as the reads took.
@Suite struct OwnThreadTests {
    @Test func outputsBeingHashedLeaveTheCooperativeThreadsFree() async throws {
        let bucket = try TemporaryBucket()
        let storage = LocalObjectStorage(root: bucket.root)
        let staging = try storage.makeStagingFolder(bucket: bucket.bucket, name: "job", for: nil)
        defer { storage.removeStagingFolder(staging) }
        // FIFOs: reading one blocks until a writer comes, as a slow disk would.
        let pipes = (0..<ProcessInfo.processInfo.activeProcessorCount).map { staging + "/out-\($0).bin" }
        for path in pipes { #expect(mkfifo(path, 0o600) == 0) }
        let publishes = pipes.enumerated().map { index, path in
            Task { try await OutputStaging.publish([(path, "out/\(index).bin")], storage: storage, bucket: bucket.bucket) }
        }

        // A thread of its own: waits until every output has a reader blocked on it, then until
        // the cooperative threads answer (a hang bound of 30 s), then lets the readers finish.
        let answered = DispatchSemaphore(value: 0)
        let hungFor30Seconds = Flag()
        let allReading: Void = await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread {
                var writers: [Int32] = []
                for path in pipes {
                    var descriptor: Int32 = -1
                    // Opening the write end without blocking fails until a reader has it open.
                    for _ in 0..<3000 where descriptor < 0 {
                        descriptor = open(path, O_WRONLY | O_NONBLOCK)
                        if descriptor < 0 { usleep(10_000) }
                    }
                    writers.append(descriptor)
                }
                continuation.resume()
                if answered.wait(timeout: .now() + 30) == .timedOut { hungFor30Seconds.value.store(true, ordering: .relaxed) }
                for descriptor in writers where descriptor >= 0 { close(descriptor) }
            }.start()
        }
        _ = allReading
        answered.signal()
        for publish in publishes { _ = try await publish.value }
        let hung = hungFor30Seconds.value.load(ordering: .relaxed)
        #expect(!hung, "the cooperative threads were held by the hashing")
    }

    final class Flag: Sendable {
        let value = Atomic(false)
    }
}
