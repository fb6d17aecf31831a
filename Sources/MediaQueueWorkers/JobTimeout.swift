import MediaQueueCore

/// Runs one job's work under the per-job time limit (`FFmpegConfiguration.jobTimeout`).
///
/// When the limit passes first, the work is cancelled (which stops its ffmpeg and removes its
/// partial outputs, as any cancellation does) and the job fails with `JobTimeout`, unless the
/// work ends with its result all the same (it was publishing, which a cancellation does not stop). A cancellation
/// of the caller stays a `CancellationError`, so a cancelled job still ends as `Cancel`.
func withJobTimeout(
    _ limit: Duration, on time: any TimeSource, _ work: @escaping @Sendable () async throws -> WorkResult
) async throws -> WorkResult {
    try await withThrowingTaskGroup(of: TimedOutcome.self) { group in
        group.addTask { .finished(try await work()) }
        group.addTask {
            try await time.sleep(for: limit)
            return .timedOut
        }
        // The first child to end decides; the other is cancelled and awaited before returning.
        defer { group.cancelAll() }
        switch try await group.next()! {
        case .finished(let value):
            return value
        case .timedOut:
            group.cancelAll()
            // Let the work end (ffmpeg stopped, outputs removed) before the job is reported.
            var finished: WorkResult?
            while let outcome = try? await group.next() {
                if case .finished(let result) = outcome { finished = result }
            }
            // Work past the point where it can stop (publishing its outputs) ends as it would
            // have: its outputs are in the bucket, and a failed job must not leave any.
            if let finished { return finished }
            try Task.checkCancellation()
            throw WorkFailure.jobTimeout(limit)
        }
    }
}

/// Which child of `withJobTimeout` ended first.
private enum TimedOutcome: Sendable {
    case finished(WorkResult)
    case timedOut
}
