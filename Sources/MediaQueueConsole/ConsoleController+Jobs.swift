import Foundation
import Hummingbird
import Logging
import MediaQueueAPI
import MediaQueueCore
import MediaQueueXML
import NIOCore

/// Jobs: the filtered, paged list; one job with its live progress, outputs and callbacks; cancel.
extension ConsoleController {
    static let pageSize = 50

    func addJobRoutes(to router: Router<APIContext>) {
        router.get("/console/b/:bucket/jobs") { request, context in
            await bucketPage(request, context) { viewer, bucket in try await jobsPage(request, viewer, bucket) }
        }
        router.get("/console/b/:bucket/jobs/:jobId") { request, context in
            await bucketPage(request, context) { viewer, bucket in
                try await jobPage(viewer, try await job(context, bucket), notice: sessions.notice(in: FormData(request.uri.query ?? "")))
            }
        }
        router.get("/console/b/:bucket/jobs/:jobId/progress") { request, context in
            await bucketPage(request, context) { _, bucket in
                let job = try await job(context, bucket)
                let body = #"{"state":"\#(job.state.rawValue)","progress":\#(job.progress),"ended":\#(job.state.isTerminal)}"#
                return Response(
                    status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                    body: ResponseBody(byteBuffer: ByteBuffer(string: body))
                )
            }
        }
        router.post("/console/b/:bucket/jobs/:jobId/cancel") { request, context in
            await bucketPage(request, context) { viewer, bucket in
                let form = try await verifiedForm(request, viewer)
                let job = try await job(context, bucket)
                let notice: String
                let result = try await store.cancel(job.id, now: time.now, workflows: workflows)
                switch result.outcome {
                case .cancelled: notice = "Job \(job.id) is cancelled."
                case .stopping: notice = "Job \(job.id) is being stopped."
                case .alreadyCancelled: notice = "Job \(job.id) was cancelled already."
                }
                if let error = result.runDeferred {
                    logger.warning("a cancelled job's workflow run moves on later", metadata: ["job.id": "\(job.id)", "error": "\(error)"])
                }
                logger.info("job cancelled from the console", metadata: ["job.id": "\(job.id)", "by": "\(viewer.displayName)"])
                // Back to where the button was, within this bucket's pages only.
                let back = form["back"].flatMap { $0.hasPrefix("/console/b/\(bucket)/") ? $0 : nil } ?? "/console/b/\(bucket)/jobs/\(job.id)"
                return .redirect(to: back + (back.contains("?") ? "&" : "?") + sessions.noticeParameters(notice))
            }
        }
        router.get("/console/b/:bucket/objects") { request, context in
            await bucketPage(request, context) { _, bucket in
                let name = FormData(request.uri.query ?? "")["key"] ?? ""
                guard let key = try? ObjectKey(name), let object = try await storage.openObject(bucket: bucket, key: key) else {
                    throw ConsoleError.notFound("Object \(name)")
                }
                // Sent in chunks, never read whole: outputs are videos.
                let body: ResponseBody
                if let file = object.file {
                    body = FileResponse.body(file, bytes: 0..<object.info.size, storage: storage)
                } else {
                    guard let file = try await storage.readableFile(bucket: bucket, key: key) else { throw ConsoleError.notFound("Object \(name)") }
                    let size = (try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int) ?? 0
                    body = FileResponse.body(file, bytes: 0..<size, storage: storage)
                }
                var response = Response(status: .ok, body: body)
                response.headers[.contentType] = "application/octet-stream"
                response.headers[.contentDisposition] = "attachment; filename=\"\(key.rawValue.split(separator: "/").last.map(String.init)?.filter { $0 != "\"" } ?? "object")\""
                return response
            }
        }
    }

    func job(_ context: APIContext, _ bucket: String) async throws -> Job {
        let id = try context.parameters.require("jobId")
        guard let job = try await store.job(id: JobID(rawValue: id)), job.bucket == bucket else { throw ConsoleError.notFound("Job \(id)") }
        return job
    }

    func jobsPage(_ request: Request, _ viewer: ConsoleViewer, _ bucket: String) async throws -> Response {
        let query = FormData(request.uri.query ?? "")
        let queues = try await store.queues(bucket: bucket)
        var filter = JobQuery(bucket: bucket, limit: Self.pageSize + 1)
        filter.queueID = query["queue"].map(QueueID.init(rawValue:))
        filter.tag = query["tag"]
        if let state = query["state"] {
            guard let value = JobState(ciName: state) else { throw ConsoleError.badRequest("unknown state \(state)") }
            filter.states = [value]
        }
        filter.createdFrom = try localTime(query["from"], field: "from")
        filter.createdTo = try localTime(query["to"], field: "to", through: true)
        filter.after = query["after"].flatMap(Int64.init)

        var jobs: [Job]
        if let id = query["jobId"] {
            jobs = try await store.job(id: JobID(rawValue: id)).map { $0.bucket == bucket ? [$0] : [] } ?? []
        } else {
            jobs = try await store.jobs(filter)
        }
        var nextPage: String?
        if jobs.count > Self.pageSize {
            jobs = Array(jobs.prefix(Self.pageSize))
            var parameters = query.query(["queue", "tag", "state", "from", "to"])
            parameters.append("after=\(jobs.last!.sequence)")
            nextPage = "/console/b/\(bucket)/jobs?" + parameters.joined(separator: "&")
        }
        let names = Dictionary(uniqueKeysWithValues: queues.map { ($0.id, $0.name) })
        // Where a cancel returns: this page with its filters, without the last notice.
        let filterParameters = query.query(["queue", "tag", "state", "from", "to", "jobId", "after"])
        let back = "/console/b/\(bucket)/jobs" + (filterParameters.isEmpty ? "" : "?" + filterParameters.joined(separator: "&"))
        let rows = jobs.map { job in
            JobRow(
                id: job.id.rawValue, tag: job.tag, state: job.state.rawValue, progress: job.progress, level: job.jobLevel,
                queueName: names[job.queueID] ?? job.queueID.rawValue, created: formatting.times.format(job.creationTime),
                ended: job.endTime.map(formatting.times.format) ?? "-", cancellable: !job.state.isTerminal, back: back
            )
        }
        var frame = viewer.frame("Jobs", bucket: bucket)
        frame.onJobs = true
        frame.notice = sessions.notice(in: query)
        let filters = JobFilters(
            queues: queues.map { Choice(value: $0.id.rawValue, label: "\($0.name) (\($0.id))", selected: filter.queueID == $0.id) },
            tags: options.tags.map { Choice(value: $0, label: $0, selected: filter.tag == $0) },
            states: JobState.allCases.map { Choice(value: $0.rawValue, label: $0.rawValue, selected: filter.states.contains($0)) },
            from: query["from"] ?? "", to: query["to"] ?? "", jobID: query["jobId"] ?? ""
        )
        return html(pages.render("jobs", JobsModel(page: frame, filters: filters, jobs: rows, nextPage: nextPage)))
    }

    func jobPage(_ viewer: ConsoleViewer, _ job: Job, notice: String?) async throws -> Response {
        var frame = viewer.frame("Job \(job.id)", bucket: job.bucket)
        frame.onJobs = true
        frame.notice = notice
        // Sprites are listed in a `SpriteOutputFile` inside the `OutputFile`.
        let outputs = (job.mediaResult.map { result in
            result.all("OutputFile").flatMap { file in
                (file.all("ObjectName") + file.all("SpriteOutputFile").flatMap { $0.all("ObjectName") }).map(\.text)
            }
        } ?? []).map { Output(key: $0, encodedKey: $0.urlEncoded) }
        let deliveries = try await store.deliveries(of: job).map { delivery in
            DeliveryRow(
                id: delivery.entry.id, target: delivery.entry.targetDescription, status: delivery.status.rawValue, attempts: delivery.entry.attempts,
                lastError: delivery.entry.lastError ?? "", nextAttempt: delivery.status == .pending ? formatting.times.format(delivery.entry.nextAttempt) : "",
                deliveredAt: delivery.deliveredAt.map(formatting.times.format) ?? ""
            )
        }
        let detail = JobDetail(
            id: job.id.rawValue, state: job.state.rawValue, progress: job.progress, tag: job.tag, queueID: job.queueID.rawValue, level: job.jobLevel,
            created: formatting.times.format(job.creationTime), started: formatting.times.format(job.startTime),
            ended: formatting.times.format(job.endTime), code: job.code, message: job.message, live: !job.state.isTerminal,
            cancellable: !job.state.isTerminal, back: "/console/b/\(job.bucket)/jobs/\(job.id)"
        )
        let model = JobModel(page: frame, job: detail, outputs: outputs, deliveries: deliveries, detail: job.jobsDetail(formatting).indented())
        return html(pages.render("job", model))
    }

    /// A `datetime-local` value read in the service's UTC offset (the one every page shows);
    /// `through`: the last millisecond of the minute (or second) it names, for the end of a
    /// range, so that "to 10:30" keeps the jobs of 10:30:59.
    func localTime(_ value: String?, field: String, through: Bool = false) throws -> Timestamp? {
        guard let value else { return nil }
        let offset = formatting.times.utcOffsetSeconds
        let sign = offset < 0 ? "-" : "+"
        let zone = sign + String(format: "%02d%02d", abs(offset) / 3600, abs(offset) % 3600 / 60)
        let full = value.count == 16 ? value + ":00" : value
        guard let time = CITimeFormat.parse(full + zone) else {
            throw ConsoleError.badRequest("\(field) must be a date and time like 2026-12-04T10:30")
        }
        guard through else { return time }
        return time + (value.count == 16 ? .milliseconds(59_999) : .milliseconds(999))
    }
}

struct Choice: Sendable {
    var value: String
    var label: String
    var selected: Bool
}

struct JobFilters: Sendable {
    var queues: [Choice]
    var tags: [Choice]
    var states: [Choice]
    var from: String
    var to: String
    var jobID: String
}

struct JobsModel: Sendable {
    var page: PageFrame
    var filters: JobFilters
    var jobs: [JobRow]
    var nextPage: String?
}

struct JobRow: Sendable {
    var id: String
    var tag: String
    var state: String
    var progress: Int
    var level: Int
    var queueName: String
    var created: String
    var ended: String
    var cancellable: Bool
    var back: String
}

struct JobModel: Sendable {
    var page: PageFrame
    var job: JobDetail
    var outputs: [Output]
    var deliveries: [DeliveryRow]
    var detail: String
}

struct JobDetail: Sendable {
    var id: String
    var state: String
    var progress: Int
    var tag: String
    var queueID: String
    var level: Int
    var created: String
    var started: String
    var ended: String
    var code: String
    var message: String
    var live: Bool
    var cancellable: Bool
    var back: String
}

struct Output: Sendable {
    var key: String
    var encodedKey: String
}

struct DeliveryRow: Sendable {
    var id: String
    var target: String
    var status: String
    var attempts: Int
    var lastError: String
    var nextAttempt: String
    var deliveredAt: String
}

extension OutboxEntry {
    /// Where the delivery goes, as an operator reads it.
    var targetDescription: String {
        switch target {
        case .url(let url): "POST \(url)"
        case .mq(let mode, let name, let region): "TDMQ \(mode.rawValue) \(name)\(region.isEmpty ? "" : " (\(region))")"
        }
    }
}

extension XMLTree {
    /// The element as indented XML text, for reading.
    func indented(_ depth: Int = 0) -> String {
        let pad = String(repeating: "  ", count: depth)
        if children.isEmpty { return "\(pad)<\(name)>\(text)</\(name)>\n" }
        return "\(pad)<\(name)>\n" + children.map { $0.indented(depth + 1) }.joined() + "\(pad)</\(name)>\n"
    }
}
