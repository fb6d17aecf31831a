import Foundation
import MediaQueueAMQP
import MediaQueueApp
import MediaQueueCore
import MediaQueueTestSupport
import MediaQueueXML
import Synchronization
import Testing

/// Callback rules end to end: real broker, SQLite, ffmpeg, and HTTP receivers on loopback.
@Suite struct CallbackDeliveryTests {
    /// A harness whose HTTP callbacks may reach loopback, with a short retry schedule.
    func harness(schedule: [Duration] = [.milliseconds(200), .milliseconds(200)], timeout: Duration = .seconds(120)) throws -> ServiceHarness {
        try ServiceHarness { configuration in
            configuration.callbackAllowedNetworks = ["127.0.0.0/8"]
            configuration.callbackRetrySchedule = schedule
            configuration.callbackTimeout = timeout
        }
    }

    /// Points the default queue's rule at `url` (through CI's UpdateMediaQueue parser).
    func setURLRule(_ application: MediaQueueApplication, url: String, format: String = "XML") async throws -> MediaQueue {
        var queue = try await application.prepare()
        let update = try QueueUpdateRequest.parse(Array("""
            <Request><NotifyConfig><State>On</State><Type>Url</Type><Event>TaskFinish</Event><ResultFormat>\(format)</ResultFormat>
            <Url>\(url)</Url></NotifyConfig></Request>
            """.utf8))
        queue.notifyConfig = try #require(update.notifyConfig)
        try application.configuration.checkCallbackURL(queue.notifyConfig.url, element: "NotifyConfig.Url")
        try await application.store.updateQueue(queue)
        return queue
    }

    func isDelivered(_ store: any JobStore, _ id: String) async throws -> Bool {
        let far = SystemTimeSource().now + .seconds(1_000_000)
        let pending = try await store.dueOutbox(.url, now: far, limit: 10_000).contains { $0.id == id }
        let dead = try await store.deadOutbox(limit: 10_000).contains { $0.id == id }
        return !pending && !dead
    }

    /// `mediaqueue …` against the harness's data, through a configuration file.
    func cli(_ harness: ServiceHarness, _ arguments: [String]) async throws -> String {
        try await harness.cli(arguments)
    }

    @Test func anXMLRuleDeliversCIsTaskFinishBodySignedWithTheBucketsSecret() async throws {
        let harness = try harness()
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 2)
        let receiver = try TestHTTPReceiver()
        let (application, service) = try harness.startService()
        defer { service.cancel() }
        let queue = try await setURLRule(application, url: receiver.url())
        try await harness.waitForIntake()

        try await harness.publish(mediaInfoRequest(userData: "xml over http"))
        try await eventually("the callback") { !receiver.requests.isEmpty }
        let request = try #require(receiver.requests.first)
        #expect(request.method == "POST")
        #expect(request.path == "/callback")
        #expect(request.headers["content-type"] == "application/xml")

        let body = try XMLDocumentParser.parse(request.body)
        #expect(body.name == "Response")
        #expect(body.children.map(\.name) == ["EventName", "JobsDetail"])
        #expect(body.text("EventName") == "TaskFinish")
        let detail = try #require(body["JobsDetail"])
        let jobID = try #require(detail.text("JobId"))
        #expect(jobID.hasPrefix("j") && jobID.count == 33)
        #expect(request.headers["x-ci-job-id"] == jobID)
        #expect(detail.text("Code") == "Success")
        #expect(detail.text("Message") == "")
        #expect(detail.text("State") == "Success")
        #expect(detail.text("Progress") == "100")
        #expect(detail.text("QueueId") == queue.id.rawValue)
        #expect(detail.text("Tag") == "MediaInfo")
        for field in ["CreationTime", "StartTime", "EndTime"] {
            let time = detail.text(field) ?? ""
            #expect(time.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}$"#, options: .regularExpression) != nil, "\(field): \(time)")
        }
        #expect(detail.text("Input", "BucketId") == harness.configuration.bucket)
        #expect(detail.text("Input", "Object") == "input/a.mp4")
        #expect(detail.text("Input", "Region") == harness.configuration.region)
        #expect(detail.text("Operation", "UserData") == "xml over http")
        let duration = try #require(Double(detail["Operation"]?["MediaInfo"]?.text("Format", "Duration") ?? ""))
        #expect(abs(duration - 2) < 0.5)

        // The secret as an operator gets it, checked by Python.
        let secret = try await cli(harness, ["callbacks", "secret"]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(secret == (try await application.store.webhookSecret(bucket: harness.configuration.bucket)))
        let verdicts = try await WebhookVerifier.verify(secret: secret, headers: request.headers, body: request.body)
        #expect(verdicts["stdlib"] == "ok")
        if WebhookVerifier.hasPackage { #expect(verdicts["standardwebhooks"] == "ok") }
        let eventID = try #require(request.headers["webhook-id"])
        try await eventually("the delivery to be recorded") { try await isDelivered(application.store, eventID) }
    }

    @Test func aSecretRotatedFromTheCommandLineSignsAlongsideTheOldOneUntilItsGraceEnds() async throws {
        let harness = try ServiceHarness { configuration in
            configuration.callbackAllowedNetworks = ["127.0.0.0/8"]
            configuration.callbackSecretRefresh = .zero
        }
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 1)
        let receiver = try TestHTTPReceiver()
        let (application, service) = try harness.startService()
        defer { service.cancel() }
        _ = try await setURLRule(application, url: receiver.url())
        try await harness.waitForIntake()

        /// Publishes one job and returns its callback's verdicts against each secret.
        func callback(_ userData: String, secrets: [String]) async throws -> (signatures: Int, verdicts: [[String: String]]) {
            try await harness.publish(mediaInfoRequest(userData: userData))
            let request = try await eventually("the callback of \(userData)") {
                receiver.requests.first { String(decoding: $0.body, as: UTF8.self).contains(userData) }
            }
            var verdicts: [[String: String]] = []
            for secret in secrets {
                verdicts.append(try await WebhookVerifier.verify(secret: secret, headers: request.headers, body: request.body))
            }
            return ((request.headers["webhook-signature"] ?? "").split(separator: " ").count, verdicts)
        }
        func accepted(_ verdict: [String: String]) -> Bool {
            verdict["stdlib"] == "ok" && (!WebhookVerifier.hasPackage || verdict["standardwebhooks"] == "ok")
        }

        let old = try await cli(harness, ["callbacks", "secret"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let before = try await callback("before rotation", secrets: [old])
        #expect(before.signatures == 1 && accepted(before.verdicts[0]))

        let new = try await cli(harness, ["callbacks", "secret", "--rotate", "--grace-seconds", "3600"]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(new.hasPrefix("whsec_") && new != old)
        #expect(try await cli(harness, ["callbacks", "secret"]).trimmingCharacters(in: .whitespacesAndNewlines) == new)
        let during = try await callback("during grace", secrets: [old, new])
        #expect(during.signatures == 2)
        #expect(during.verdicts.allSatisfy(accepted), "\(during.verdicts)")

        // Rotating with no grace drops the replaced secret at once; the first is long gone.
        let newest = try await cli(harness, ["callbacks", "secret", "--rotate", "--grace-seconds", "0"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let after = try await callback("after grace", secrets: [newest, new, old])
        #expect(after.signatures == 1)
        #expect(accepted(after.verdicts[0]))
        #expect(after.verdicts[1]["stdlib"] == "mismatch" && after.verdicts[2]["stdlib"] == "mismatch")
    }

    @Test func httpsCallbacksAreDeliveredOnlyToReceiversWhoseCertificateChainsToATrustedCA() async throws {
        let receiver = try TestHTTPReceiver()
        let server = try await TLSForwarder(targetPort: Int(receiver.port))
        for trusted in [false, true] {
            let harness = try ServiceHarness { configuration in
                configuration.callbackAllowedNetworks = ["127.0.0.0/8"]
                configuration.callbackRetrySchedule = [.milliseconds(100), .milliseconds(100)]
                configuration.callbackCAFile = trusted ? server.caFile : nil
            }
            try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 1)
            let (application, service) = try harness.startService()
            defer { service.cancel() }
            _ = try await setURLRule(application, url: server.url())
            try await harness.waitForIntake()
            try await harness.publish(mediaInfoRequest(userData: "trusted \(trusted)"))
            if trusted {
                let request = try await eventually("the callback over HTTPS") { receiver.requests.first }
                #expect(String(decoding: request.body, as: UTF8.self).contains("trusted true"))
                let secret = try await application.store.webhookSecret(bucket: harness.configuration.bucket)
                #expect(try await WebhookVerifier.verify(secret: secret, headers: request.headers, body: request.body)["stdlib"] == "ok")
            } else {
                // Every attempt fails its handshake: the delivery dies naming the certificate, and nothing arrives.
                let dead = try await eventually("a dead delivery") { try await application.store.deadOutbox(limit: 10).first }
                #expect(dead.attempts == 3)
                #expect((dead.lastError ?? "").lowercased().contains("certificate"), "\(dead.lastError ?? "")")
                #expect(receiver.requests.isEmpty)
            }
        }
        await server.stop()
    }

    @Test func aJobsJSONOverrideDeliversTheUnwrappedJSONFormWithEveryScalarAString() async throws {
        let harness = try harness()
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 2)
        let receiver = try TestHTTPReceiver()
        let (application, service) = try harness.startService()
        defer { service.cancel() }
        let queue = try await application.prepare()
        try await harness.waitForIntake()

        try await harness.publish("""
            <Request><Tag>MediaInfo</Tag><Input><Object>input/a.mp4</Object></Input><Operation><UserData>json please</UserData>
            <JobLevel>2</JobLevel></Operation><CallBack>\(receiver.url("/json"))</CallBack><CallBackFormat>JSON</CallBackFormat></Request>
            """)
        try await eventually("the callback") { !receiver.requests.isEmpty }
        let request = try #require(receiver.requests.first)
        #expect(request.path == "/json")
        #expect(request.headers["content-type"] == "application/json")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any])
        #expect(Set(object.keys) == ["EventName", "JobsDetail"])
        #expect(object["EventName"] as? String == "TaskFinish")
        let detail = try #require(object["JobsDetail"] as? [String: Any])
        #expect(detail["State"] as? String == "Success")
        #expect(detail["Code"] as? String == "Success")
        #expect(detail["Progress"] as? String == "100")
        #expect(detail["Tag"] as? String == "MediaInfo")
        #expect(detail["QueueId"] as? String == queue.id.rawValue)
        #expect(detail["JobId"] as? String == request.headers["x-ci-job-id"])
        let input = try #require(detail["Input"] as? [String: Any])
        #expect(input["BucketId"] as? String == harness.configuration.bucket)
        #expect(input["Object"] as? String == "input/a.mp4")
        let operation = try #require(detail["Operation"] as? [String: Any])
        #expect(operation["UserData"] as? String == "json please")
        #expect(operation["JobLevel"] as? String == "2")
        let format = (operation["MediaInfo"] as? [String: Any])?["Format"] as? [String: Any]
        #expect(Double(format?["Duration"] as? String ?? "") != nil)
        // Every scalar anywhere in the document is a string.
        func scalarsAreStrings(_ value: Any) -> Bool {
            switch value {
            case let dictionary as [String: Any]: dictionary.values.allSatisfy(scalarsAreStrings)
            case let array as [Any]: array.allSatisfy(scalarsAreStrings)
            default: value is String
            }
        }
        #expect(scalarsAreStrings(object))
        let secret = try await application.store.webhookSecret(bucket: harness.configuration.bucket)
        #expect(try await WebhookVerifier.verify(secret: secret, headers: request.headers, body: request.body)["stdlib"] == "ok")
    }

    @Test func topicSubscribersGetExactlyWhatTheirBindingMatchesAndAQueueRuleFillsItsQueue() async throws {
        let harness = try harness()
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 2)
        let everything = try await harness.subscribeToEvents(pattern: "job.#")
        let failedOnly = try await harness.client.declareQueue(AMQPQueue(name: TestEnvironment.uniqueName("it.failed"), durable: false, autoDelete: true))
        try await harness.client.bind(AMQPBinding(queue: failedOnly, exchange: harness.configuration.eventsExchange, routingKey: "job.*.*.Failed"))
        let (application, service) = try harness.startService()
        defer { service.cancel() }
        let queue = try await application.prepare()
        try await harness.waitForIntake()

        try await harness.publish(mediaInfoRequest(userData: "ok"))
        try await harness.publish(mediaInfoRequest(object: "input/missing.mp4", userData: "broken"))
        let all = try await harness.receive(2, from: everything)
        #expect(Set(all.map(\.routingKey)) == ["job.\(queue.id).MediaInfo.Success", "job.\(queue.id).MediaInfo.Failed"])
        var failed: [AMQPMessage] = []
        try await eventually("the Failed subscriber's message") {
            if let message = try await harness.client.get(queue: failedOnly) { failed.append(message) }
            return !failed.isEmpty
        }
        // Both events were confirmed by the broker (so routed) before they were recorded as
        // delivered: once they are, the Failed subscriber's queue holds all it will get.
        try await eventually("both deliveries to be recorded") {
            try await application.store.dueOutbox(.tdmq, now: Timestamp(seconds: Int64.max / 2000), limit: 10).isEmpty
        }
        while let extra = try await harness.client.get(queue: failedOnly) { failed.append(extra) }
        #expect(failed.map(\.routingKey) == ["job.\(queue.id).MediaInfo.Failed"])
        #expect(failed.first?.xml?["JobsDetail"]?.text("Operation", "UserData") == "broken")

        // The same queue switched to MqMode=Queue: each event lands in the durable queue MqName.
        let target = TestEnvironment.uniqueName("it.cmq-rule")
        var updated = queue
        updated.notifyConfig = try #require(try QueueUpdateRequest.parse(Array("""
            <Request><NotifyConfig><State>On</State><Type>tdmq</Type><Event>TaskFinish</Event><MqMode>Queue</MqMode>
            <MqName>\(target)</MqName><MqRegion>sh</MqRegion></NotifyConfig></Request>
            """.utf8)).notifyConfig)
        try await application.store.updateQueue(updated)
        try await harness.publish(mediaInfoRequest(userData: "q1"))
        try await harness.publish(mediaInfoRequest(userData: "q2"))
        var queued: [AMQPMessage] = []
        try await eventually("two messages in the rule's queue") {
            if let message = try? await harness.client.get(queue: target) { queued.append(message) }
            return queued.count >= 2
        }
        #expect(Set(queued.compactMap { $0.xml?["JobsDetail"]?.text("Operation", "UserData") }) == ["q1", "q2"])
        #expect(queued.allSatisfy { $0.properties.persistent && $0.properties.messageID?.isEmpty == false })
    }

    /// The rule's queue was made by its owner with other settings than the relay's plain durable
    /// queue (here a quorum queue): the broker refuses the relay's declare (406), and the events
    /// go into the queue as it is.
    @Test func aRulesQueueThatExistsWithOtherSettingsGetsItsEvents() async throws {
        let harness = try harness()
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 2)
        let target = TestEnvironment.uniqueName("it.quorum-rule")
        try await harness.client.declare(AMQPTopology(queues: [AMQPQueue(name: target, durable: true, arguments: ["x-queue-type": .string("quorum")])]))
        let (application, service) = try await startService(harness, withEventsInQueue: target)
        defer { service.cancel() }

        try await harness.publish(mediaInfoRequest(userData: "into-quorum"))
        #expect(try await nextEvent(in: target, harness, application) == "into-quorum")
        try await harness.client.deleteQueue(target)
    }

    /// A running service whose queue's rule puts TaskFinish events in the queue `target`.
    func startService(_ harness: ServiceHarness, withEventsInQueue target: String) async throws -> (MediaQueueApplication, Task<Void, any Error>) {
        let (application, service) = try harness.startService()
        do {
            var queue = try await application.prepare()
            queue.notifyConfig = try #require(try QueueUpdateRequest.parse(Array("""
                <Request><NotifyConfig><State>On</State><Type>tdmq</Type><Event>TaskFinish</Event><MqMode>Queue</MqMode>
                <MqName>\(target)</MqName><MqRegion>sh</MqRegion></NotifyConfig></Request>
                """.utf8)).notifyConfig)
            try await application.store.updateQueue(queue)
            try await harness.waitForIntake()
        } catch {
            service.cancel()
            throw error
        }
        return (application, service)
    }

    /// The UserData of the next event in the queue `target` (none while the queue is missing),
    /// or "dead" once a delivery is dead: the schedule is short, so a refused delivery is dead in
    /// well under a second.
    func nextEvent(in target: String, _ harness: ServiceHarness, _ application: MediaQueueApplication) async throws -> String {
        try await eventually("an event in \(target), or its delivery dead") { () -> String? in
            if let message = try? await harness.client.get(queue: target) { return message.xml?["JobsDetail"]?.text("Operation", "UserData") }
            return try await application.store.deadOutbox(DeliveryFilter(), limit: 10).isEmpty ? nil : "dead"
        }
    }

    /// The rule's queue deleted while the service runs (a cleanup script, an operator's slip):
    /// the broker returns the next event (the relay publishes mandatory), the relay declares the
    /// queue again, and the retry puts the event in it. Nothing declares such queues after a
    /// reconnect any more; this is how one that is gone comes back.
    @Test func aRulesQueueDeletedWhileTheServiceRunsIsDeclaredAgainForTheNextEvent() async throws {
        let harness = try harness()
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 2)
        let target = TestEnvironment.uniqueName("it.deleted-rule")
        let (application, service) = try await startService(harness, withEventsInQueue: target)
        defer { service.cancel() }

        try await harness.publish(mediaInfoRequest(userData: "before"))
        #expect(try await nextEvent(in: target, harness, application) == "before")

        try await harness.client.deleteQueue(target)
        try await harness.publish(mediaInfoRequest(userData: "after"))
        #expect(try await nextEvent(in: target, harness, application) == "after")
        try await harness.client.deleteQueue(target)
    }

    @Test func aDeliveryInterruptedBetweenTheJobsEndAndTheAnswerIsDeliveredAfterARestart() async throws {
        // A callback timeout no attempt reaches, so the only way a second request comes is the restart.
        let harness = try harness(timeout: .seconds(600))
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 2)
        let answering = CallbackFlag()
        let receiver = try TestHTTPReceiver { _, _ in answering.isSet ? .status(200) : .hang }
        let (application, service) = try harness.startService()
        _ = try await setURLRule(application, url: receiver.url())
        try await harness.waitForIntake()

        try await harness.publish(mediaInfoRequest(userData: "survives"))
        try await eventually("the first attempt to arrive") { !receiver.requests.isEmpty }
        let jobID = JobID(rawValue: try #require(receiver.requests.first?.headers["x-ci-job-id"]))
        #expect(try await application.store.job(id: jobID)?.state == .success)
        // The process goes away while the receiver holds the request: nothing recorded it as sent.
        service.cancel()
        _ = try? await service.value

        #expect(receiver.requests.count == 1)

        answering.set()
        let (restarted, again) = try harness.startService()
        defer { again.cancel() }
        try await eventually("the delivery after the restart") { receiver.requests.count >= 2 }
        let ids = Set(receiver.requests.map { $0.headers["webhook-id"] })
        #expect(ids.count == 1)
        let eventID = try #require(ids.first ?? nil)
        try await eventually("the delivery to be recorded") { try await isDelivered(restarted.store, eventID) }
    }

    @Test func deadDeliveriesAreListedAndRedrivenFromTheCommandLine() async throws {
        let harness = try harness(schedule: [.milliseconds(100), .milliseconds(100)])
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 2)
        let answering = CallbackFlag()
        let receiver = try TestHTTPReceiver { _, _ in answering.isSet ? .status(200) : .status(500, body: "broken") }
        let (application, service) = try harness.startService()
        defer { service.cancel() }
        _ = try await setURLRule(application, url: receiver.url())
        try await harness.waitForIntake()

        try await harness.publish(mediaInfoRequest(userData: "dead then alive"))
        let dead = try await eventually("a dead delivery") { try await application.store.deadOutbox(limit: 10).first }
        #expect(receiver.requests.count == 3)
        let listing = try await cli(harness, ["callbacks", "dead"])
        let row = try #require(listing.split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }.first { $0.first == dead.id })
        #expect(row == [dead.id, dead.jobID.rawValue, receiver.url(), "3", "HTTP 500: broken"])

        answering.set()
        #expect(try await cli(harness, ["callbacks", "redrive"]).contains("1 dead delivery due again"))
        try await eventually("the redriven delivery") { try await isDelivered(application.store, dead.id) }
        #expect(receiver.requests.count == 4)
        #expect(receiver.requests.last?.headers["webhook-id"] == dead.id)
        #expect(try await cli(harness, ["callbacks", "dead"]).contains("no dead deliveries"))
    }

    @Test func aRuleWhoseURLIsALiteralPrivateAddressIsRefusedWhenItIsSet() throws {
        var configuration = MediaQueueConfiguration()
        for url in ["http://10.0.0.8/cb", "http://[::1]:8080/cb", "https://169.254.169.254/latest", "http://127.0.0.1:9/x"] {
            let error = #expect(throws: CIError.self) { try configuration.checkCallbackURL(url, element: "NotifyConfig.Url") }
            #expect(error?.code == .invalidArgument)
            #expect(error?.message.hasPrefix("NotifyConfig.Url: ") == true)
        }
        try configuration.checkCallbackURL("https://example.com/cb", element: "NotifyConfig.Url")
        configuration.callbackAllowedNetworks = ["127.0.0.0/8"]
        try configuration.checkCallbackURL("http://127.0.0.1:9/x", element: "NotifyConfig.Url")
    }
}

/// A switch a receiver's reply closure reads.
final class CallbackFlag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}

/// The relay in a process of its own (roles split across processes): it reads the outbox
/// instead of getting events handed over in memory, and must still send each event once.
@Suite struct SplitRolesTests {
    @Test func aRelayOfItsOwnDeliversABacklogWithEachEventOnce() async throws {
        // Room for many jobs at once: the backlog is made quickly, so the test's time is the relay's.
        let harness = try ServiceHarness {
            $0.roles = [.intake, .dispatch]
            $0.maxRunningJobs = 64
            $0.queueMaxConcurrent = 64
        }
        let events = try await harness.subscribeToEvents()
        let worker = RecordingWorker()
        let (application, service) = try harness.startService(workers: [worker])
        try await harness.waitForIntake()
        let names = (0..<1500).map { "split-\($0)" }
        try await harness.publish(batch: names.map { recordRequest($0) })
        try await eventually("every job to run", reaches: names.count) { worker.endedCount }
        let queue = try await application.prepare()
        try await eventually("every job's end to be recorded") {
            try await application.store.jobs(JobQuery(queueID: queue.id, states: [.submitted, .running], limit: 1)).isEmpty
        }
        #expect(try await application.store.jobs(JobQuery(states: [.success], limit: 2000)).count == names.count)
        service.cancel()
        _ = try? await service.value

        var relayOnly = harness.configuration
        relayOnly.roles = [.relay]
        let relay = try MediaQueueApplication(configuration: relayOnly, logger: harness.logger)
        let relayTask = Task { try await relay.run(handleSignals: false) }
        defer { relayTask.cancel() }
        let received = try await harness.receive(names.count, from: events)
        let userData = received.compactMap { $0.xml?["JobsDetail"]?.text("Operation", "UserData") }
        #expect(Set(userData) == Set(names))
        #expect(userData.count == names.count)
        try await eventually("every delivery to be recorded") {
            try await relay.store.dueOutbox(.tdmq, now: Timestamp(seconds: Int64.max / 2000), limit: 10).isEmpty
        }
        // Every event was confirmed before it was recorded, so all are in the subscriber's queue
        // now; a marker published after them shows that none came twice.
        relayTask.cancel()
        _ = try? await relayTask.value
        try await harness.publishMarker("job.marker")
        let extra = try await harness.receive(until: "job.marker", from: events)
        #expect(extra.count == 0, "events arrived twice")
    }
}
