import MediaQueueCore
import MediaQueueXML

/// What every ffmpeg-backed worker shares, so each one only says how to read its options and
/// what to do with an open input:
///
/// - `validate` (at submission): the input (`Input.Object` or `Input.Url`), `Output.Object`
///   when the tag writes files, and the options;
/// - `run`: under the per-job time limit (`FFmpegConfiguration.jobTimeout`), the options read
///   again from the stored job (a failure becomes the job's `Code`), the input opened (a URL is
///   downloaded, and removed again afterwards), then `perform`.
protocol FFmpegWorker: MediaWorker {
    /// The operation's settings, as `options(_:)` reads them.
    associatedtype Options: Sendable

    var configuration: FFmpegConfiguration { get }

    /// Whether jobs of this tag write `Operation.Output.Object` (so it is required).
    static var writesOutput: Bool { get }

    /// Reads and checks the settings of an `<Operation>`; an error names the offending field.
    static func options(_ operation: XMLTree) throws(CIError) -> Options

    /// Does the job's work on its open input.
    func perform(_ job: Job, input: JobInput, options: Options, context: WorkContext) async throws -> WorkResult
}

extension FFmpegWorker {
    static var writesOutput: Bool { true }

    public func validate(_ operation: CreateMediaJobsRequest.Operation) throws(CIError) {
        _ = try operation.requireInput()
        if Self.writesOutput { _ = try operation.requireOutputObject() }
        _ = try Self.options(operation.operation)
    }

    public func run(_ job: Job, context: WorkContext) async throws -> WorkResult {
        try await withJobTimeout(configuration.jobTimeout, on: context.time) { [self] in
            let options: Options
            do throws(CIError) {
                options = try Self.options(job.operation)
            } catch {
                throw error.asWorkFailure
            }
            let input = try await JobInput.open(job, context: context)
            defer { input.close() }
            return try await perform(job, input: input, options: options, context: context)
        }
    }
}
