import Foundation
import MediaQueueCore

/// Runs `body`, which blocks (it reads a whole file), on a thread of its own: on one of Swift's
/// cooperative threads (two on a two-core machine) it would hold up, for as long as it reads,
/// everything else the process does there: the API, its health probes, the engine.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// `onOwnThread` for the storage's calls, whose failures are `WorkFailure`s.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws(WorkFailure) -> T) async throws(WorkFailure) -> T {
    do {
        return try await onOwnThread { () throws -> T in try body() }
    } catch let failure as WorkFailure {
        throw failure
    } catch {
        throw WorkFailure(code: "InternalError", message: "\(error)")
    }
}
