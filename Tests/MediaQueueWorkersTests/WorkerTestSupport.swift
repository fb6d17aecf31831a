import Foundation
import Logging
import MediaQueueCore
import MediaQueueTestSupport
import MediaQueueWorkers
import MediaQueueXML
import Synchronization

/// Progress values a worker reported, in order.
final class ProgressLog: Sendable {
    private let values = Mutex<[Int]>([])

    var reported: [Int] { values.withLock { $0 } }

    func record(_ value: Int) {
        values.withLock { $0.append(value) }
    }
}

/// Tests log nowhere: the workers take a logger, and these runs need none.
let quietLogger = Logger(label: "MediaQueueWorkersTests") { _ in SwiftLogNoOpLogHandler() }

/// The operation a CreateMediaJobs request with `operationXML` inside `<Operation>` would
/// submit, validated by `worker` exactly as the intake would.
func submit(
    tag: String, input: String? = "input/a.mp4", operationXML: String, worker: some MediaWorker
) throws(CIError) -> CreateMediaJobsRequest.Operation {
    let inputXML = input.map { "<Input><Object>\($0)</Object></Input>" } ?? "<Input></Input>"
    let body = "<Request><Tag>\(tag)</Tag>\(inputXML)<Operation>\(operationXML)</Operation></Request>"
    return try CreateMediaJobsRequest.parse(Array(body.utf8), validate: worker.validate).operations[0]
}

/// A stored job for `operation` in `bucket`.
func makeJob(_ operation: CreateMediaJobsRequest.Operation, bucket: TemporaryBucket) -> Job {
    Job(
        bucket: bucket.bucket, queueID: .generate(), tag: operation.tag, jobLevel: operation.jobLevel,
        input: operation.input, operation: operation.operation, creationTime: Timestamp(seconds: 0)
    )
}

/// A context on `bucket` (local storage) that records progress into `progress`; `downloader`
/// fetches `Input.Url`.
func makeContext(
    _ bucket: TemporaryBucket, progress: ProgressLog = ProgressLog(), downloader: (any InputDownloader)? = nil,
    time: any TimeSource = SystemTimeSource()
) -> WorkContext {
    WorkContext(
        bucket: bucket.bucket, storage: LocalObjectStorage(root: bucket.root), downloader: downloader,
        formatting: CIFormatting(region: "ap-test"), time: time
    ) { progress.record($0) }
}

/// The `WorkFailure` a run threw, or nil when it succeeded or threw something else.
func workFailure(_ body: () async throws -> WorkResult) async -> WorkFailure? {
    do {
        _ = try await body()
        return nil
    } catch {
        return error as? WorkFailure
    }
}

/// The error `validate` throws for a request, or nil when it is accepted.
func validationError(
    tag: String, input: String? = "input/a.mp4", operationXML: String, worker: some MediaWorker
) -> CIError? {
    do {
        _ = try submit(tag: tag, input: input, operationXML: operationXML, worker: worker)
        return nil
    } catch {
        return error
    }
}
