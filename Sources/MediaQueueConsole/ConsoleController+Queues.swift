import Hummingbird
import Logging
import MediaQueueAPI
import MediaQueueCore
import MediaQueueXML

/// Queues and Callbacks: the list with its Operation column, pause and enable, limits, and the
/// callback rule form (validated as the API validates `UpdateMediaQueue`).
extension ConsoleController {
    func addQueueRoutes(to router: Router<APIContext>) {
        router.get("/console/b/:bucket/queues") { request, context in
            await bucketPage(request, context) { viewer, bucket in try await queuesPage(viewer, bucket, notice: sessions.notice(in: FormData(request.uri.query ?? ""))) }
        }
        router.get("/console/b/:bucket/queues/:queueId") { request, context in
            await bucketPage(request, context) { viewer, bucket in
                let queue = try await queue(context, bucket)
                let notice = sessions.notice(in: FormData(request.uri.query ?? ""))
                return queuePage(viewer, queue, settings: SettingsForm(queue), rule: RuleForm(queue.notifyConfig), notice: notice)
            }
        }
        router.post("/console/b/:bucket/queues/:queueId/state") { request, context in
            await bucketPage(request, context) { viewer, bucket in
                let form = try await verifiedForm(request, viewer)
                let shown = try await queue(context, bucket)
                guard let state = form["state"].flatMap(MediaQueue.State.init(anyCase:)) else { throw ConsoleError.badRequest("state must be Active or Paused") }
                let (checkRule, now) = (checkRule, time.now)
                let queue = try await store.changeQueue(id: shown.id) { queue throws(CIError) in
                    try queue.apply(QueueUpdateRequest(state: state), checkRule: checkRule)
                    queue.updateTime = now
                }
                logger.info("queue state changed from the console", metadata: ["queue.id": "\(queue.id)", "state": "\(state.rawValue)", "by": "\(viewer.displayName)"])
                let notice = "\(queue.name) is \(state == .paused ? "paused" : "enabled")."
                return .redirect(to: "/console/b/\(bucket)/queues?" + sessions.noticeParameters(notice))
            }
        }
        router.post("/console/b/:bucket/queues/:queueId/settings") { request, context in
            await bucketPage(request, context) { viewer, bucket in
                let form = try await verifiedForm(request, viewer)
                let shown = try await queue(context, bucket)
                let settings = SettingsForm(form)
                guard settings.errors.isEmpty, let maxConcurrent = Int(settings.maxConcurrent), let maxSize = Int(settings.maxSize) else {
                    return queuePage(viewer, shown, settings: settings, rule: RuleForm(shown.notifyConfig), status: .badRequest)
                }
                let now = time.now
                let queue = try await store.changeQueue(id: shown.id) { queue in
                    queue.maxConcurrent = maxConcurrent
                    queue.maxSize = maxSize
                    queue.updateTime = now
                }
                logger.info(
                    "queue limits changed from the console",
                    metadata: ["queue.id": "\(queue.id)", "maxConcurrent": "\(maxConcurrent)", "maxSize": "\(maxSize)", "by": "\(viewer.displayName)"]
                )
                return savedRedirect(queue, notice: "Limits saved.")
            }
        }
        router.post("/console/b/:bucket/queues/:queueId/rule") { request, context in
            await bucketPage(request, context) { viewer, bucket in
                let form = try await verifiedForm(request, viewer)
                let shown = try await queue(context, bucket)
                var rule = RuleForm(form)
                let (checkRule, now) = (checkRule, time.now)
                let queue: MediaQueue
                do {
                    let update = QueueUpdateRequest(notifyConfig: try NotifyConfig(xml: rule.notifyConfig))
                    queue = try await store.changeQueue(id: shown.id) { queue throws(CIError) in
                        try queue.apply(update, checkRule: checkRule)
                        queue.updateTime = now
                    }
                } catch let error as CIError where error.code != .noSuchQueue && error.code != .internalError {
                    rule.show(error)
                    return queuePage(viewer, shown, settings: SettingsForm(shown), rule: rule, status: .badRequest)
                }
                logger.info("callback rule changed from the console", metadata: ["queue.id": "\(queue.id)", "by": "\(viewer.displayName)"])
                return savedRedirect(queue, notice: "Callback rule saved.")
            }
        }
    }

    /// To the queue's page, after a change was saved: reloading that page does not post the
    /// form again (which would put back what another operator changed since).
    private func savedRedirect(_ queue: MediaQueue, notice: String) -> Response {
        .redirect(to: "/console/b/\(queue.bucket)/queues/\(queue.id)?" + sessions.noticeParameters(notice))
    }

    func queue(_ context: APIContext, _ bucket: String) async throws -> MediaQueue {
        let id = try context.parameters.require("queueId")
        guard let queue = try await store.queue(id: QueueID(rawValue: id)), queue.bucket == bucket else { throw ConsoleError.notFound("Queue \(id)") }
        return queue
    }

    func queuesPage(_ viewer: ConsoleViewer, _ bucket: String, notice: String?) async throws -> Response {
        var frame = viewer.frame("Queues and Callbacks", bucket: bucket)
        frame.onQueues = true
        frame.notice = notice
        let rows = try await queuesWithStatistics(bucket).map { queue, counts in
            QueueRow(
                id: queue.id.rawValue, name: queue.name, state: queue.state.rawValue, paused: queue.state == .paused,
                maxConcurrent: queue.maxConcurrent, maxSize: queue.maxSize, running: counts.running,
                waiting0: counts.waitingByLevel[0], waiting1: counts.waitingByLevel[1], waiting2: counts.waitingByLevel[2],
                rule: queue.notifyConfig.summary
            )
        }
        return html(pages.render("queues", QueuesModel(page: frame, queues: rows)))
    }

    /// The bucket's queues in creation order, each with what it holds now.
    func queuesWithStatistics(_ bucket: String) async throws -> [(MediaQueue, QueueStatistics)] {
        let statistics = Dictionary(uniqueKeysWithValues: try await store.queueStatistics(bucket: bucket).map { ($0.queueID, $0) })
        return try await store.queues(bucket: bucket).map { ($0, statistics[$0.id] ?? QueueStatistics(queueID: $0.id, bucket: bucket)) }
    }

    func queuePage(
        _ viewer: ConsoleViewer, _ queue: MediaQueue, settings: SettingsForm, rule: RuleForm, notice: String? = nil, status: HTTPResponse.Status = .ok
    ) -> Response {
        var frame = viewer.frame("Queue \(queue.name)", bucket: queue.bucket)
        frame.onQueues = true
        frame.notice = notice
        if status != .ok { frame.error = "Not saved: correct the fields marked below." }
        let model = QueueModel(page: frame, queue: QueueHeader(id: queue.id.rawValue, state: queue.state.rawValue), settings: settings, rule: rule)
        return html(pages.render("queue", model), status: status)
    }
}

struct QueuesModel: Sendable {
    var page: PageFrame
    var queues: [QueueRow]
}

struct QueueRow: Sendable {
    var id: String
    var name: String
    var state: String
    var paused: Bool
    var maxConcurrent: Int
    var maxSize: Int
    var running: Int
    var waiting0: Int
    var waiting1: Int
    var waiting2: Int
    var rule: String
}

struct QueueModel: Sendable {
    var page: PageFrame
    var queue: QueueHeader
    var settings: SettingsForm
    var rule: RuleForm
}

struct QueueHeader: Sendable {
    var id: String
    var state: String
}

/// The limits form, as entered, with an error per field.
struct SettingsForm: Sendable {
    var maxConcurrent: String
    var maxSize: String
    var errors: [String: String] = [:]

    init(_ queue: MediaQueue) {
        maxConcurrent = String(queue.maxConcurrent)
        maxSize = String(queue.maxSize)
    }

    init(_ form: FormData) {
        maxConcurrent = form["MaxConcurrent"] ?? ""
        maxSize = form["MaxSize"] ?? ""
        if !(Int(maxConcurrent).map(MediaQueue.maxConcurrentRange.contains) ?? false) {
            errors["MaxConcurrent"] = "MaxConcurrent must be a whole number from 1 to \(MediaQueue.maxConcurrentRange.upperBound)."
        }
        if !(Int(maxSize).map(MediaQueue.maxSizeRange.contains) ?? false) {
            errors["MaxSize"] = "MaxSize must be a whole number from 1 to \(MediaQueue.maxSizeRange.upperBound)."
        }
    }
}

/// The callback rule form, as entered or as stored, with an error next to the field it is about.
struct RuleForm: Sendable {
    var on: Bool
    var url: Bool
    var tdmq: Bool
    var urlValue: String
    var queueMode: Bool
    var topicMode: Bool
    var mqName: String
    var mqRegion: String
    var taskFinish: Bool
    var workflowFinish: Bool
    var taskProgress: Bool
    var formatXML: Bool
    var formatJSON: Bool
    var errors: [String: String] = [:]

    init(_ rule: NotifyConfig) {
        on = rule.isOn
        url = rule.type == .url
        tdmq = rule.type == .tdmq
        urlValue = rule.url
        queueMode = rule.mqMode != .topic
        topicMode = rule.mqMode == .topic
        mqName = rule.mqName
        mqRegion = rule.mqRegion
        taskFinish = rule.events.contains(.taskFinish)
        workflowFinish = rule.events.contains(.workflowFinish)
        taskProgress = rule.events.contains(.taskProgress)
        formatXML = rule.resultFormat == .xml
        formatJSON = rule.resultFormat == .json
    }

    init(_ form: FormData) {
        on = form["State"] == "On"
        url = form["Type"] == "Url"
        tdmq = form["Type"] == "TDMQ"
        urlValue = form["Url"] ?? ""
        topicMode = form["MqMode"] == "Topic"
        queueMode = !topicMode
        mqName = form["MqName"] ?? ""
        mqRegion = form["MqRegion"] ?? ""
        let events = Set(form.all("Event"))
        taskFinish = events.contains("TaskFinish")
        workflowFinish = events.contains("WorkflowFinish")
        taskProgress = events.contains("TaskProgress")
        formatJSON = form["ResultFormat"] == "JSON"
        formatXML = !formatJSON
    }

    /// The rule as CI's `<NotifyConfig>`, for the same parser and checks as the API's.
    var notifyConfig: XMLTree {
        let events = [(taskFinish, "TaskFinish"), (workflowFinish, "WorkflowFinish"), (taskProgress, "TaskProgress")].filter(\.0).map(\.1)
        return XMLTree("NotifyConfig", children: [
            XMLTree("State", text: on ? "On" : "Off"),
            XMLTree("Type", text: url ? "Url" : tdmq ? "TDMQ" : ""),
            XMLTree("Url", text: url ? urlValue : ""),
            XMLTree("Event", text: events.joined(separator: ",")),
            XMLTree("ResultFormat", text: formatJSON ? "JSON" : "XML"),
            XMLTree("MqMode", text: tdmq ? (topicMode ? "Topic" : "Queue") : ""),
            XMLTree("MqName", text: tdmq ? mqName : ""),
            XMLTree("MqRegion", text: tdmq ? mqRegion : ""),
        ])
    }

    /// Puts `error` next to the field it names (`NotifyConfig.Url` → `Url`; others by `Type`).
    mutating func show(_ error: any Error) {
        let element = (error as? CIError)?.element.map { String($0.split(separator: ".").last ?? "") }
        let field = element.flatMap { ["Url", "MqName", "MqMode", "Event"].contains($0) ? $0 : nil } ?? "Type"
        errors[field] = (error as? CIError)?.message ?? "\(error)"
    }
}

extension NotifyConfig {
    /// One line for the queue list: off, or where and what.
    var summary: String {
        guard isOn else { return "Off" }
        let events = self.events.map(\.rawValue).joined(separator: ",")
        switch type {
        case .url?: return "Url \(url) (\(events), \(resultFormat.rawValue))"
        case .tdmq?: return "TDMQ \(mqMode?.rawValue ?? "Queue") \(mqName) (\(events), \(resultFormat.rawValue))"
        case nil: return "On"
        }
    }
}
