import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import MediaQueueCore
import MediaQueueXML
import NIOCore

/// The CI endpoints: `/mediabucket`, `/queue`, `/jobs` (spec/ci-api.md §2 and §4).
struct CIController: Sendable {
    let store: any JobStore
    let factory: SubmissionFactory
    let formatting: CIFormatting
    let time: any TimeSource
    let maxBodyBytes: Int
    let maxJobIDs: Int
    let onSubmitted: @Sendable () -> Void
    /// Cancels jobs, moving on the runs of workflow node jobs cancelled while they waited.
    let workflows: WorkflowRunner?
    /// Refuses a callback rule early (a literal private address, say); the same check as the CLI's.
    let checkRule: @Sendable (NotifyConfig, _ bucket: String) throws(CIError) -> Void

    /// Each route is registered twice: as CI has it, and path style behind `/<bucket>`.
    func addRoutes(to router: some RouterMethods<APIContext>) {
        for prefix in ["", "/:bucket"] {
            router.post("\(prefix)/mediabucket") { request, context in try await activate(request, context) }
            router.get("\(prefix)/queue") { request, context in try await listQueues(request, context) }
            router.put("\(prefix)/queue/:queueId") { request, context in try await updateQueue(request, context) }
            router.post("\(prefix)/jobs") { request, context in try await createJobs(request, context) }
            router.get("\(prefix)/jobs") { request, context in try await listJobs(request, context) }
            router.get("\(prefix)/jobs/:jobIds") { request, context in try await describeJobs(request, context) }
            router.put("\(prefix)/jobs/:jobIds") { request, context in try await cancelJob(request, context) }
        }
    }

    // MARK: Queues

    func activate(_ request: Request, _ context: APIContext) async throws -> Response {
        let queue = try await factory.queues.defaultQueue(bucket: context.bucket)
        return xml(XMLTree("Response", children: [
            XMLTree("RequestId", text: context.requestID),
            XMLTree("MediaBucket", children: [
                XMLTree("Name", text: context.bucket),
                XMLTree("BucketId", text: context.bucket),
                XMLTree("Region", text: formatting.region),
                XMLTree("CreateTime", text: formatting.times.format(queue.createTime)),
            ]),
        ]))
    }

    func listQueues(_ request: Request, _ context: APIContext) async throws -> Response {
        let query = request.queryParameters
        _ = try await factory.queues.defaultQueue(bucket: context.bucket)
        let queues = try await store.queues(bucket: context.bucket)
        var children = [XMLTree("RequestId", text: context.requestID)]

        let listed = (query.nonEmpty("queueIds") ?? query.nonEmpty("queueId"))?
            .split(separator: ",").map { String($0).trimmed }.filter { !$0.isEmpty } ?? []
        var seen = Set<String>()
        let requested = listed.filter { seen.insert($0).inserted }
        guard requested.count <= Self.maxQueueIDs else {
            throw CIError(.invalidArgument, "queueIds names \(requested.count) queues; at most \(Self.maxQueueIDs) may be asked for at once", element: "QueueIds")
        }
        if !requested.isEmpty {
            var missing: [String] = []
            for id in requested {
                if let queue = queues.first(where: { $0.id.rawValue == id }) {
                    children.append(queue.xml(times: formatting.times))
                } else {
                    missing.append(id)
                }
            }
            if !missing.isEmpty {
                children.append(XMLTree("NonExistPIDs", children: missing.map { XMLTree("QueueID", text: $0) }))
            }
            return xml(XMLTree("Response", children: children))
        }

        var selected = queues
        if let state = query.nonEmpty("state"), state.lowercased() != "all" {
            guard let wanted = MediaQueue.State(anyCase: state) else {
                throw CIError(.invalidArgument, "state must be Active, Paused or All, not '\(state)'", element: "state")
            }
            selected = selected.filter { $0.state == wanted }
        }
        if let category = query.nonEmpty("category"), category != "CateAll" {
            selected = selected.filter { $0.category == category }
        }
        let pageNumber = try query.int("pageNumber", default: 1, range: 1...100_000)
        let pageSize = try query.int("pageSize", default: 10, range: 1...100)
        let page = selected.dropFirst((pageNumber - 1) * pageSize).prefix(pageSize)
        children += [
            XMLTree("TotalCount", text: String(selected.count)),
            XMLTree("PageNumber", text: String(pageNumber)),
            XMLTree("PageSize", text: String(pageSize)),
        ]
        children += page.map { $0.xml(times: formatting.times) }
        return xml(XMLTree("Response", children: children))
    }

    func updateQueue(_ request: Request, _ context: APIContext) async throws -> Response {
        let id = try context.parameters.require("queueId")
        let update = try QueueUpdateRequest.parse(try await body(request))
        let (bucket, checkRule, now) = (context.bucket, checkRule, time.now)
        let queue = try await store.changeQueue(id: QueueID(rawValue: id)) { queue throws(CIError) in
            guard queue.bucket == bucket else { throw CIError(.noSuchQueue, "queue \(id) does not exist in bucket \(bucket)", element: "QueueId") }
            try queue.apply(update, checkRule: checkRule)
            queue.updateTime = now
        }
        return xml(XMLTree("Response", children: [
            XMLTree("RequestId", text: context.requestID),
            queue.xml("Queue", times: formatting.times),
        ]))
    }

    // MARK: Jobs

    func createJobs(_ request: Request, _ context: APIContext) async throws -> Response {
        let bytes = try await body(request)
        let token = request.headers[.clientToken]
        let submission: Submission
        switch await factory.submission(body: bytes, bucket: context.bucket, idempotencyKey: token, now: time.now) {
        case .success(let made):
            submission = made
        case .failure(let error):
            // A retry of a POST that succeeded gets its jobs, though the checks would now
            // refuse it (its template or queue since deleted).
            guard let ids = try await store.jobsStoredBefore(clientKey: token, bucket: context.bucket) else { throw error }
            return xml(XMLTree("Response", children: try await store.jobs(ids: ids).map { $0.jobsDetail(formatting) }))
        }
        guard let outcome = try await store.submit([submission]).first else {
            throw CIError(.internalError, "the store returned no outcome")
        }
        var jobs: [Job] = []
        switch outcome {
        case .created(let created):
            jobs = created
            onSubmitted()
        case .duplicate(let ids):
            jobs = try await store.jobs(ids: ids)
        case .refused(let error):
            throw error
        }
        return xml(XMLTree("Response", children: jobs.map { $0.jobsDetail(formatting) }))
    }

    func describeJobs(_ request: Request, _ context: APIContext) async throws -> Response {
        let list = try context.parameters.require("jobIds")
        let ids = (list.removingPercentEncoding ?? list).split(separator: ",").map { String($0).trimmed }.filter { !$0.isEmpty }
        guard !ids.isEmpty, ids.count <= maxJobIDs else { throw CIError(.invalidArgument, "name 1 to \(maxJobIDs) job ids", element: "JobId") }
        var children: [XMLTree] = []
        var missing: [String] = []
        for id in ids {
            if let job = try await store.job(id: JobID(rawValue: id)), job.bucket == context.bucket {
                children.append(job.jobsDetail(formatting))
            } else {
                missing.append(id)
            }
        }
        children += missing.map { XMLTree("NonExistJobIds", text: $0) }
        return xml(XMLTree("Response", children: children))
    }

    func listJobs(_ request: Request, _ context: APIContext) async throws -> Response {
        let query = request.queryParameters
        var filter = JobQuery(bucket: context.bucket)
        filter.tag = query.nonEmpty("tag")
        filter.queueID = query.nonEmpty("queueId").map(QueueID.init(rawValue:))
        // Every queue here is a Transcoding one: another type (SpeedTranscoding) lists no job.
        let otherQueueType = filter.queueID == nil && query.nonEmpty("queueType").map { $0 != "Transcoding" } == true
        filter.states = Set(try query.states(JobState.init(ciName:)))
        filter.newestFirst = try query.newestFirst()
        filter.createdFrom = try query.time("startCreationTime")
        filter.createdTo = try query.endOfSecond("endCreationTime")
        filter.workflowID = query.nonEmpty("workflowId")
        filter.inputObject = query.nonEmpty("inputObject")
        let size = try query.int("size", default: 10, range: 1...100)
        filter.after = try query.nextToken()
        filter.limit = size + 1
        // No batch (inventory) jobs run here, so none of the jobs was triggered by one.
        let jobs = query.nonEmpty("inventoryTriggerJobId") == nil && !otherQueueType ? try await store.jobs(filter) : []
        let page = jobs.prefix(size)
        var children = page.map { $0.jobsDetail(formatting) }
        children.append(XMLTree("NextToken", text: jobs.count > size ? String(page.last!.sequence) : ""))
        return xml(XMLTree("Response", children: children))
    }

    func cancelJob(_ request: Request, _ context: APIContext) async throws -> Response {
        let id = try context.parameters.require("jobIds")
        guard request.queryParameters.has("cancel") else {
            throw CIError(.invalidArgument, "PUT /jobs/<id> needs ?cancel", element: "cancel")
        }
        guard let job = try await store.job(id: JobID(rawValue: id)), job.bucket == context.bucket else {
            throw CIError(.noSuchJob, "job \(id) does not exist")
        }
        let result = try await store.cancel(job.id, now: time.now, workflows: workflows)
        if let error = result.runDeferred {
            context.logger.warning("a cancelled job's workflow run moves on later", metadata: ["job.id": "\(job.id)", "error": "\(error)"])
        }
        return Response(status: .ok)
    }

    // MARK: Helpers

    /// The request's body, checked against its `Content-MD5` when it sent one.
    func body(_ request: Request) async throws -> [UInt8] {
        let expectedMD5 = try ContentMD5.expected(in: request.headers)
        var request = request
        let bytes: [UInt8]
        do {
            bytes = Array(try await request.collectBody(upTo: maxBodyBytes).readableBytesView)
        } catch is NIOTooManyBytesError {
            throw CIError(APIError.entityTooLarge, "the request body is larger than \(maxBodyBytes) bytes")
        }
        if let expectedMD5 { try ContentMD5.check(Data(Insecure.MD5.hash(data: bytes)), expected: expectedMD5) }
        return bytes
    }

    func xml(_ tree: XMLTree) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "application/xml"],
            body: .init(byteBuffer: ByteBuffer(bytes: tree.xmlBytes(declaration: true)))
        )
    }

    /// Queues one `GET /queue?queueIds=` may name (CI's documented limit).
    static let maxQueueIDs = 10
}

extension HTTPField.Name {
    /// An idempotency key for `POST /jobs` (CI's `ClientToken`).
    static let clientToken = HTTPField.Name("x-ci-client-token")!
}

extension QueryParameters {
    func time(_ name: String) throws(CIError) -> Timestamp? {
        guard var text = nonEmpty(name) else { return nil }
        // A `+` before the offset that was not encoded (`%2B`) arrives as a space. (Signed, it
        // would not get here: a `+` is a space to the signature too, as to COS and the SDKs.)
        if let space = text.lastIndex(of: " ") { text.replaceSubrange(space...space, with: "+") }
        guard let time = CITimeFormat.parse(text) else {
            throw CIError(.invalidArgument, "\(name) must look like 2001-01-01T00:00:00+0800", element: name)
        }
        return time
    }

    /// The time `name` gives, as the last millisecond of its second: times are shown in whole
    /// seconds, and a job shown at the time an `endCreationTime` names is within it.
    func endOfSecond(_ name: String) throws(CIError) -> Timestamp? {
        try time(name).map { Timestamp(milliseconds: $0.milliseconds + 999) }
    }

    /// `states`: a comma-separated list, `All` (or nothing) for every state.
    func states<State>(_ parse: (String) -> State?) throws(CIError) -> [State] {
        guard let list = nonEmpty("states") else { return [] }
        var states: [State] = []
        for name in list.split(separator: ",").map({ String($0).trimmed }) where name.lowercased() != "all" {
            guard let state = parse(name) else { throw CIError(.invalidArgument, "states: unknown state '\(name)'", element: "states") }
            states.append(state)
        }
        return states
    }

    /// `orderByTime`: `Desc` (the default) or `Asc`.
    func newestFirst() throws(CIError) -> Bool {
        switch nonEmpty("orderByTime")?.lowercased() {
        case nil, "desc": return true
        case "asc": return false
        case let other?: throw CIError(.invalidArgument, "orderByTime must be Desc or Asc, not '\(other)'", element: "orderByTime")
        }
    }

    /// `nextToken`: the sequence number after which the next page starts.
    func nextToken() throws(CIError) -> Int64? {
        guard let token = nonEmpty("nextToken") else { return nil }
        guard let after = Int64(token) else { throw CIError(.invalidArgument, "nextToken is not one this service gave", element: "nextToken") }
        return after
    }

    func int(_ name: String, default value: Int, range: ClosedRange<Int>) throws(CIError) -> Int {
        guard let text = nonEmpty(name) else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw CIError(.invalidArgument, "\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound)", element: name)
        }
        return number
    }
}
