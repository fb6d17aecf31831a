import Hummingbird
import Logging
import MediaQueueAPI
import MediaQueueCore

/// The overview (jobs per state, throughput over the last hour, oldest waiting job per queue) and
/// the dead callbacks with their redrive.
extension ConsoleController {
    /// Dead deliveries shown on one page; the redrive of all matching is not bound by it.
    static let deadShown = 200

    func addOverviewRoutes(to router: Router<APIContext>) {
        router.get("/console/b/:bucket") { request, context in
            await bucketPage(request, context) { viewer, bucket in try await overviewPage(viewer, bucket) }
        }
    }

    func addCallbackRoutes(to router: Router<APIContext>) {
        router.get("/console/b/:bucket/callbacks/dead") { request, context in
            await bucketPage(request, context) { viewer, bucket in try await deadPage(request, viewer, bucket) }
        }
        router.post("/console/b/:bucket/callbacks/dead/redrive") { request, context in
            await bucketPage(request, context) { viewer, bucket in
                let form = try await verifiedForm(request, viewer)
                var filter = try deliveryFilter(form, bucket: bucket)
                if let id = form["id"] { filter.ids = [id] }
                let count = try await store.redriveDead(filter, now: time.now)
                logger.info("dead callbacks redriven from the console", metadata: ["count": "\(count)", "by": "\(viewer.displayName)"])
                let notice = count == 1 ? "1 delivery is due again." : "\(count) deliveries are due again."
                let parameters = form.query(["queue", "endpoint", "from", "to"])
                return .redirect(to: "/console/b/\(bucket)/callbacks/dead?" + (parameters + [sessions.noticeParameters(notice)]).joined(separator: "&"))
            }
        }
    }

    func overviewPage(_ viewer: ConsoleViewer, _ bucket: String) async throws -> Response {
        let now = time.now
        let activity = try await store.activity(bucket: bucket, since: now - .seconds(24 * 3600), now: now)
        let queues = try await queuesWithStatistics(bucket).map { queue, counts in
            QueueSummary(
                id: queue.id.rawValue, name: queue.name, state: queue.state.rawValue, running: counts.running, waiting: counts.waiting,
                oldestWaiting: counts.oldestWaiting.map { "\(formatting.times.format($0)) (\(Self.age(now.milliseconds - $0.milliseconds)) ago)" } ?? "-"
            )
        }
        let busiest = activity.endedPerMinute.max() ?? 0
        let bars = activity.endedPerMinute.enumerated().map { minute, count in
            let height = busiest == 0 ? 0 : max(count > 0 ? 2 : 0, count * 96 / busiest)
            let minutesAgo = activity.endedPerMinute.count - 1 - minute
            return Bar(x: minute * 10, y: 100 - height, height: height, label: "\(minutesAgo == 0 ? "this minute" : "\(minutesAgo) min ago"): \(count) ended")
        }
        var frame = viewer.frame("Overview", bucket: bucket)
        frame.onOverview = true
        let model = OverviewModel(
            page: frame, states: JobState.allCases.map { StateCount(name: $0.rawValue, count: activity.byState[$0] ?? 0) },
            endedLastHour: activity.endedPerMinute.reduce(0, +), busiestMinute: busiest, bars: bars, queues: queues
        )
        return html(pages.render("overview", model))
    }

    func deadPage(_ request: Request, _ viewer: ConsoleViewer, _ bucket: String) async throws -> Response {
        let query = FormData(request.uri.query ?? "")
        let filter = try deliveryFilter(query, bucket: bucket)
        let dead = try await store.deadOutbox(filter, limit: Self.deadShown + 1)
        let queues = try await store.queues(bucket: bucket)
        var frame = viewer.frame("Dead callbacks", bucket: bucket)
        frame.onDead = true
        frame.notice = sessions.notice(in: query)
        let model = DeadModel(
            page: frame,
            filters: DeadFilters(
                queues: queues.map { Choice(value: $0.id.rawValue, label: "\($0.name) (\($0.id))", selected: filter.queueID == $0.id) },
                queue: query["queue"] ?? "", endpoint: query["endpoint"] ?? "", from: query["from"] ?? "", to: query["to"] ?? ""
            ),
            deliveries: dead.prefix(Self.deadShown).map { entry in
                DeadRow(
                    id: entry.id, jobID: entry.jobID.rawValue, isRun: entry.event == .workflowFinish, endpoint: entry.endpoint, attempts: entry.attempts, lastError: entry.lastError ?? "",
                    created: formatting.times.format(entry.createdAt)
                )
            },
            total: dead.count > Self.deadShown ? "" : "\(dead.count) ", shown: min(dead.count, Self.deadShown),
            more: dead.count > Self.deadShown
        )
        return html(pages.render("dead", model))
    }

    /// The dead callbacks' filter from a query or a form.
    func deliveryFilter(_ fields: FormData, bucket: String) throws -> DeliveryFilter {
        DeliveryFilter(
            bucket: bucket, queueID: fields["queue"].map(QueueID.init(rawValue:)), endpoint: fields["endpoint"],
            createdFrom: try localTime(fields["from"], field: "from"), createdTo: try localTime(fields["to"], field: "to", through: true)
        )
    }

    /// `95 s`, `12 min`, `3 h`, `2 d`.
    static func age(_ milliseconds: Int64) -> String {
        let seconds = max(0, milliseconds / 1000)
        switch seconds {
        case ..<120: return "\(seconds) s"
        case ..<7200: return "\(seconds / 60) min"
        case ..<172_800: return "\(seconds / 3600) h"
        default: return "\(seconds / 86400) d"
        }
    }
}

struct OverviewModel: Sendable {
    var page: PageFrame
    var states: [StateCount]
    var endedLastHour: Int
    var busiestMinute: Int
    var bars: [Bar]
    var queues: [QueueSummary]
}

struct StateCount: Sendable {
    var name: String
    var count: Int
}

struct Bar: Sendable {
    var x: Int
    var y: Int
    var height: Int
    var label: String
}

struct QueueSummary: Sendable {
    var id: String
    var name: String
    var state: String
    var running: Int
    var waiting: Int
    var oldestWaiting: String
}

struct DeadModel: Sendable {
    var page: PageFrame
    var filters: DeadFilters
    var deliveries: [DeadRow]
    var total: String
    var shown: Int
    var more: Bool
}

struct DeadFilters: Sendable {
    var queues: [Choice]
    var queue: String
    var endpoint: String
    var from: String
    var to: String
}

struct DeadRow: Sendable {
    var id: String
    /// A WorkflowFinish's is its run's id.
    var jobID: String
    var isRun: Bool
    var endpoint: String
    var attempts: Int
    var lastError: String
    var created: String
}
