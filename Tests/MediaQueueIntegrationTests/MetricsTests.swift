import Foundation
import FoundationNetworking
import MediaQueueApp
import MediaQueueCore
import MediaQueueEngine
import MediaQueueTestSupport
import Synchronization
import Testing

/// `/metrics` of a real service after real jobs: what Prometheus would scrape.
@Suite struct MetricsTests {
    static let promtool = "/usr/bin/promtool"

    @Test func metricsCountTheJobsThatRanAndPassPromtool() async throws {
        let harness = try ServiceHarness { configuration in
            configuration.callbackAllowedNetworks = ["127.0.0.0/8"]
            configuration.callbackRetrySchedule = [.zero]
        }
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 1)
        let receiver = try TestHTTPReceiver { _, _ in .status(410) }
        let port = Mutex<Int?>(nil)
        let (application, service) = try harness.startService { _, listening in port.withLock { $0 = listening } }
        defer { service.cancel() }
        let queue = try await application.prepare()
        let events = try await harness.subscribeToEvents()
        try await harness.waitForIntake()
        let api = try await eventually("the API to listen") { port.withLock { $0 } }

        // Three that succeed, two whose input is missing, and one whose URL callback is refused
        // for good (410), so its only attempt makes it dead.
        for index in 0..<3 { try await harness.publish(mediaInfoRequest(userData: "ok \(index)")) }
        for index in 0..<2 { try await harness.publish(mediaInfoRequest(object: "input/missing.mp4", userData: "missing \(index)")) }
        try await harness.publish("""
            <Request><Tag>MediaInfo</Tag><Input><Object>input/a.mp4</Object></Input><Operation><UserData>url</UserData></Operation>
            <CallBack>\(receiver.url())</CallBack></Request>
            """)
        _ = try await harness.receive(5, from: events)
        try await eventually("the URL callback to be tried") { receiver.requests.count == 1 }

        let labels = "bucket=\"\(harness.configuration.bucket)\",queue=\"\(queue.id.rawValue)\""
        let text = try await eventually("every attempt counted and recorded") { () -> String? in
            let text = try await Self.scrape(port: api)
            let samples = Self.samples(text)
            let attempts = (samples["mediaqueue_callback_attempts_total{channel=\"tdmq\"}"] ?? 0)
                + (samples["mediaqueue_callback_attempts_total{channel=\"url\"}"] ?? 0)
            // Deliveries are recorded in the store just after their confirm or answer.
            let recorded = samples["mediaqueue_outbox_pending{channel=\"tdmq\"}"] == 0 && samples["mediaqueue_outbox_dead{channel=\"url\"}"] == 1
            return attempts >= 6 && recorded ? text : nil
        }
        let samples = Self.samples(text)
        #expect(samples["mediaqueue_jobs_submitted_total{\(labels),tag=\"MediaInfo\"}"] == 6)
        #expect(samples["mediaqueue_jobs_finished_total{\(labels),tag=\"MediaInfo\",state=\"Success\"}"] == 4)
        #expect(samples["mediaqueue_jobs_finished_total{\(labels),tag=\"MediaInfo\",state=\"Failed\"}"] == 2)
        #expect(samples["mediaqueue_job_run_seconds_count{tag=\"MediaInfo\"}"] == 6)
        #expect(samples["mediaqueue_job_wait_seconds_count{\(labels)}"] == 6)
        for level in 0...2 { #expect(samples["mediaqueue_jobs_waiting{\(labels),level=\"\(level)\"}"] == 0) }
        #expect(samples["mediaqueue_jobs_running{\(labels)}"] == 0)
        #expect(samples["mediaqueue_callback_attempts_total{channel=\"tdmq\"}"] == 5)
        #expect(samples["mediaqueue_callback_attempts_total{channel=\"url\"}"] == 1)
        #expect(samples["mediaqueue_callback_failures_total{channel=\"url\"}"] == 1)
        #expect(samples["mediaqueue_callback_dead_total{channel=\"url\"}"] == 1)
        #expect(samples["mediaqueue_outbox_pending{channel=\"tdmq\"}"] == 0)
        #expect(samples["mediaqueue_amqp_reconnects_total{connection=\"intake\"}"] == 0)
        // The intake stores with a claim when it has free slots, without one otherwise.
        let stores = ["submit", "submitAndClaim"].map { samples["mediaqueue_store_transaction_seconds_count{operation=\"\($0)\"}"] ?? 0 }
        #expect(stores.reduce(0, +) >= 1)

        // Prometheus' own linter accepts the exposition.
        #expect(FileManager.default.isExecutableFile(atPath: Self.promtool), "promtool (Debian's prometheus package) is installed by scripts/test.sh")
        let file = harness.configuration.dataDir + "/metrics.txt"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let check = try await runCommand("/bin/sh", ["-c", "\(Self.promtool) check metrics < \"$1\"", "sh", file], allowFailure: true)
        #expect(check.status == 0, "promtool check metrics: \(check.stdout)\(check.stderr)")
    }

    @Test func metricsNeedNoSignature() async throws {
        let harness = try ServiceHarness { $0.credentials = "AKIDmetrics:secret:\($0.bucket)" }
        let port = Mutex<Int?>(nil)
        let (_, service) = try harness.startService { _, listening in port.withLock { $0 = listening } }
        defer { service.cancel() }
        let api = try await eventually("the API to listen") { port.withLock { $0 } }
        let text = try await Self.scrape(port: api)
        #expect(text.contains("# TYPE mediaqueue_jobs_waiting gauge"))
        #expect(text.contains("# HELP mediaqueue_outbox_pending "))
    }

    /// Deploy/grafana's dashboard queries the series the service exports, and every one of them.
    @Test func theGrafanaDashboardChartsEveryExportedSeriesByItsRealName() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let data = try Data(contentsOf: root.appendingPathComponent("Deploy/grafana/mediaqueue-dashboard.json"))
        let dashboard = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        let expressions = panels.flatMap { ($0["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String } }
        var used = Set<String>()
        for expression in expressions {
            var rest = Substring(expression)
            while let start = rest.range(of: "mediaqueue_") {
                let name = rest[start.lowerBound...].prefix { $0.isLetter || $0.isNumber || $0 == "_" }
                used.insert(String(name))
                rest = rest[start.upperBound...]
            }
        }
        let exported = Set(EngineMetrics.catalog.flatMap { description -> [String] in
            if case .histogram = description.kind { return ["_bucket", "_sum", "_count"].map { description.name + $0 } }
            return [description.name]
        })
        #expect(used.subtracting(exported).isEmpty, "series the service does not export: \(used.subtracting(exported).sorted())")
        let charted = Set(EngineMetrics.catalog.map(\.name).filter { name in used.contains { $0.hasPrefix(name) } })
        #expect(charted == Set(EngineMetrics.catalog.map(\.name)), "series without a panel: \(Set(EngineMetrics.catalog.map(\.name)).subtracting(charted).sorted())")
    }

    static func scrape(port: Int) async throws -> String {
        let (body, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/metrics")!)
        let http = try #require(response as? HTTPURLResponse)
        #expect(http.statusCode == 200)
        #expect(http.value(forHTTPHeaderField: "Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
        return String(decoding: body, as: UTF8.self)
    }

    /// `series{labels} value` lines by series, as Prometheus reads them.
    static func samples(_ text: String) -> [String: Double] {
        var samples: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
        return samples
    }
}
