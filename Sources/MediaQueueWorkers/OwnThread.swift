import Foundation

/// Runs `body`, which blocks (it reads a whole file), on a thread of its own: on one of Swift's
/// cooperative threads (two on a two-core machine) it would hold up, for as long as it reads,
/// everything else the process does there: the API, its health probes, the engine.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}
