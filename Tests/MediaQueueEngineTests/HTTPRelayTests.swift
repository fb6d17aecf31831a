import Foundation
import Logging
import MediaQueueCore
@testable import MediaQueueEngine
import MediaQueueHTTPClient
import MediaQueueTestSupport
import MediaQueueXML
import Synchronization
import Testing

/// The HTTP relay with the memory store and the real libcurl client, against real HTTP
/// receivers on loopback.
@Suite struct HTTPRelayTests {
    let store = MemoryJobStore()

    static let loopbackOnly = AddressPolicy(allowedNetworks: [IPNetwork("127.0.0.0/8")!])

    /// Puts a delivery of `body` to `url` in the outbox (through a job's end, as the dispatcher does).
    @discardableResult
    func enqueue(
        _ url: String, body: String = "<Response><EventName>TaskFinish</EventName></Response>", contentType: String = "application/xml",
        dueIn offset: Duration = .zero
    ) async throws -> OutboxEntry {
        let queue = try await store.ensureDefaultQueue(bucket: "b-1", template: MediaQueue(bucket: "", name: "", createTime: SystemTimeSource().now))
        var job = Job(
            bucket: "b-1", queueID: queue.id, tag: "MediaInfo", input: XMLTree("Input"), operation: XMLTree("Operation"),
            creationTime: SystemTimeSource().now
        )
        let outcomes = try await store.submit([Submission(idempotencyKey: nil, jobs: [job])])
        guard case .created(let created) = outcomes.first else { throw TimedOut(description: "job not stored") }
        job = created[0]
        let now = SystemTimeSource().now
        _ = try await store.claimJobs(owner: "t", now: now, leaseUntil: now + .seconds(60), limit: 100)
        job.state = .success
        let entry = OutboxEntry(
            jobID: job.id, bucket: "b-1", target: .url(url), routingKey: "job.x", body: Array(body.utf8),
            contentType: contentType, nextAttempt: now + offset, createdAt: now + offset
        )
        #expect(try await store.finish(job, owner: "t", outbox: [entry]))
        return entry
    }

    /// Runs a relay until the returned task is cancelled.
    func startRelay(
        schedule: [Duration] = [.milliseconds(100)], maxPerEndpoint: Int = 8, maxInFlight: Int = 512, batchSize: Int = 500,
        timeout: Duration = .seconds(120), policy: AddressPolicy = loopbackOnly, time: any TimeSource = SystemTimeSource()
    ) -> Task<Void, any Error> {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let client = HTTPClient(configuration: HTTPClientConfiguration(connectTimeout: .seconds(60), timeout: timeout, addressPolicy: policy))
        let relay = HTTPRelayService(
            store: store, client: client,
            options: HTTPRelayOptions(
                batchSize: batchSize, pollInterval: .milliseconds(20), retrySchedule: RetrySchedule(delays: schedule, jitter: 0),
                // No coalescing pause: on a manual clock it would wait for the test to move time.
                maxPerEndpoint: maxPerEndpoint, maxInFlight: maxInFlight, coalesce: .zero
            ),
            time: time, wakeup: Wakeup(), logger: logger
        )
        return Task { try await relay.run() }
    }

    /// The entry as the store has it now, if it is still pending or dead; nil once delivered.
    func stored(_ id: String) async throws -> OutboxEntry? { store.outboxEntry(id: id) }

    /// Waits until the relay has read the outbox twice for what is due at `time` or later: once
    /// it has, anything due by then has been taken, so a test can check what was not sent.
    func relayHasLooked(at time: Timestamp) async throws {
        try await eventually("the relay to read the outbox at \(time)") { store.outboxReads(atOrAfter: time) >= 2 }
    }

    func isDelivered(_ id: String) async throws -> Bool { try await stored(id) == nil }

    func isDead(_ id: String) async throws -> Bool { try await store.deadOutbox(limit: 10_000).contains { $0.id == id } }

    @Test func fiveHundredThreeTimesThenOKIsOneDeliveryAfterFourAttemptsWithGrowingDelays() async throws {
        let receiver = try TestHTTPReceiver { _, index in index < 3 ? .status(500, body: "busy") : .status(200) }
        let entry = try await enqueue(receiver.url())
        // An injected clock: each attempt waits for the clock to reach its scheduled time, so
        // the test checks the schedule exactly instead of timing a busy machine.
        let clock = ManualTimeSource(SystemTimeSource().now)
        let start = clock.now
        let delays: [Duration] = [.milliseconds(100), .milliseconds(800), .milliseconds(2000), .seconds(5)]
        let relay = startRelay(schedule: delays, time: clock)
        defer { relay.cancel() }

        var elapsed: Duration = .zero
        for attempt in 1...3 {
            try await eventually("attempt \(attempt) to be recorded") { try await stored(entry.id)?.attempts == attempt }
            let scheduled = try #require(try await stored(entry.id)).nextAttempt
            #expect(scheduled == start + elapsed + delays[attempt - 1], "attempt \(attempt)")
            #expect(receiver.requests.count == attempt)
            // Not a moment early: just before the scheduled time nothing more is sent.
            clock.advance(by: delays[attempt - 1] - .milliseconds(1))
            try await relayHasLooked(at: clock.now)
            #expect(receiver.requests.count == attempt)
            clock.advance(by: .milliseconds(1))
            elapsed += delays[attempt - 1]
        }
        try await eventually("the delivery to be accepted") { try await isDelivered(entry.id) }
        let requests = receiver.requests
        #expect(requests.count == 4)
        #expect(Set(requests.map { $0.headers["webhook-id"] }) == [entry.id])
        // Each attempt carries its own timestamp, from the (injected) clock.
        let stamps = requests.compactMap { Int64($0.headers["webhook-timestamp"] ?? "") }
        #expect(stamps == stamps.sorted() && stamps.first == start.seconds && stamps.last == (start + elapsed).seconds)
    }

    /// A delivery whose bucket's signing secret the store could not read is not sent, and that
    /// is not a failed attempt: it keeps its lease, and goes out when that ends.
    @Test func aSigningSecretTheStoreCouldNotReadIsNotAFailedAttempt() async throws {
        let receiver = try TestHTTPReceiver { _, _ in .status(200) }
        let entry = try await enqueue(receiver.url())
        store.failNextSecretReads(1)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let clock = ManualTimeSource(SystemTimeSource().now)
        let relay = HTTPRelayService(
            store: store, client: HTTPClient(configuration: HTTPClientConfiguration(addressPolicy: Self.loopbackOnly)), options: HTTPRelayOptions(),
            time: clock, wakeup: Wakeup(time: clock), logger: logger
        )
        let leaseUntil = clock.now + .seconds(300)
        let outcome = await relay.attempt(entry, leaseUntil: leaseUntil)
        #expect(!outcome.isAttempt, "\(outcome)")
        await relay.record([Flights.Finished(entry: entry, outcome: outcome, leaseUntil: leaseUntil)])
        let stored = try #require(try await stored(entry.id))
        #expect(stored.attempts == 0 && stored.lastError == nil)
        #expect(receiver.requests.isEmpty)
    }

    /// A `Retry-After` longer than the schedule's delay puts the next attempt that far ahead; a
    /// shorter one (a maintenance page's `0`) does not bring it forward: taken as it was, a
    /// short outage spent every attempt within seconds.
    @Test(arguments: [
        (retryAfter: "2", scheduled: Duration.milliseconds(50), next: Duration.seconds(2)),
        (retryAfter: "0", scheduled: .seconds(30), next: .seconds(30)),
    ])
    func aRetryAfterCanOnlyPutTheNextAttemptLater(retryAfter: String, scheduled: Duration, next: Duration) async throws {
        let receiver = try TestHTTPReceiver { _, index in
            index == 0 ? .status(503, headers: ["Retry-After": retryAfter]) : .status(204)
        }
        let entry = try await enqueue(receiver.url())
        let clock = ManualTimeSource(SystemTimeSource().now)
        let start = clock.now
        let relay = startRelay(schedule: [scheduled, scheduled], time: clock)
        defer { relay.cancel() }

        try await eventually("the first attempt to be recorded") { try await stored(entry.id)?.attempts == 1 }
        #expect(try await stored(entry.id)?.nextAttempt == start + next)
        clock.advance(by: next - .milliseconds(1))
        try await relayHasLooked(at: clock.now)
        #expect(receiver.requests.count == 1)
        clock.advance(by: .milliseconds(1))
        try await eventually("the delivery to be accepted") { try await isDelivered(entry.id) }
        #expect(receiver.requests.count == 2)
    }

    @Test func goneStopsRetryingAtOnce() async throws {
        let receiver = try TestHTTPReceiver { _, _ in .status(410) }
        let entry = try await enqueue(receiver.url())
        let relay = startRelay(schedule: [.milliseconds(50), .milliseconds(50), .milliseconds(50)])
        defer { relay.cancel() }

        try await eventually("the delivery to be dead") { try await isDead(entry.id) }
        let dead = try #require(try await stored(entry.id))
        #expect(dead.attempts == 1)
        #expect(dead.lastError == "HTTP 410 Gone")
        // Past the whole retry schedule, the relay has looked again and sent nothing.
        try await relayHasLooked(at: SystemTimeSource().now + .milliseconds(200))
        #expect(receiver.requests.count == 1)
    }

    @Test func aDeliveryThatFailsEveryAttemptIsDeadAndRedriveDeliversIt() async throws {
        let accepting = Flag()
        let receiver = try TestHTTPReceiver { _, _ in accepting.isSet ? .status(200) : .status(500, body: "down for maintenance") }
        let entry = try await enqueue(receiver.url())
        let relay = startRelay(schedule: [.milliseconds(50), .milliseconds(50)])
        defer { relay.cancel() }

        try await eventually("the delivery to be dead") { try await isDead(entry.id) }
        let dead = try #require(try await store.deadOutbox(limit: 10).first)
        #expect(dead.id == entry.id)
        #expect(dead.attempts == 3)
        #expect(dead.lastError == "HTTP 500: down for maintenance")
        #expect(receiver.requests.count == 3)

        accepting.set()
        #expect(try await store.redriveDead(now: SystemTimeSource().now) == 1)
        try await eventually("the redriven delivery to be accepted") { try await isDelivered(entry.id) }
        #expect(receiver.requests.count == 4)
        #expect(receiver.requests.last?.headers["webhook-id"] == entry.id)
    }

    @Test func aDeliveryTheStoreFailedToRecordIsRecordedAtTheNextTryAndNotSentAgain() async throws {
        let receiver = try TestHTTPReceiver()
        store.failNextRecordings(1)
        let entry = try await enqueue(receiver.url())
        // A clock the test moves only once the delivery is recorded: until then its lease cannot
        // end, so only the relay's own second write can record it.
        let clock = ManualTimeSource(SystemTimeSource().now)
        let relay = startRelay(time: clock)
        defer { relay.cancel() }

        try await eventually("the failed write") { store.recordingFailuresLeft == 0 }
        try await eventually("the delivery to be recorded") { try await isDelivered(entry.id) }
        #expect(receiver.requests.map { $0.headers["webhook-id"] } == [entry.id])
    }

    @Test func aFailedAttemptTheStoreFailedToRecordIsRecordedAtTheNextTry() async throws {
        let receiver = try TestHTTPReceiver { _, _ in .status(500, body: "busy") }
        store.failNextRecordings(1)
        let entry = try await enqueue(receiver.url())
        let clock = ManualTimeSource(SystemTimeSource().now)
        let relay = startRelay(schedule: [.seconds(30)], time: clock)
        defer { relay.cancel() }

        try await eventually("the failed write") { store.recordingFailuresLeft == 0 }
        try await eventually("the failed attempt to be recorded") { try await stored(entry.id)?.attempts == 1 }
        let recorded = try #require(try await stored(entry.id))
        #expect(recorded.lastError == "HTTP 500: busy")
        // The next attempt goes out on the schedule, long before the lease would have ended.
        #expect(recorded.nextAttempt == clock.now + .seconds(30))
        clock.advance(by: .seconds(30))
        try await eventually("the second attempt") { receiver.requests.count == 2 }
    }

    @Test func aReceiverThatIsDownThenBackGetsTheDelivery() async throws {
        // Reserved, not merely free: a port given back could be taken meanwhile by any of the
        // machine's connections, and the relay would then reach that instead of a refusal.
        let reserved = try ReservedPort()
        defer { reserved.release() }
        let entry = try await enqueue("http://127.0.0.1:\(reserved.port)/callback")
        // Retries until the receiver is back, however long the machine takes to get there.
        let relay = startRelay(schedule: Array(repeating: .milliseconds(200), count: 10_000))
        defer { relay.cancel() }

        try await eventually("two failed attempts") { try await stored(entry.id).map { $0.attempts >= 2 } ?? false }
        #expect(try await stored(entry.id)?.lastError?.contains("connectFailed") == true)
        let receiver = try TestHTTPReceiver(port: reserved.port)
        try await eventually("the delivery to be accepted") { try await isDelivered(entry.id) }
        #expect(receiver.requests.map { $0.headers["webhook-id"] } == [entry.id])
    }

    @Test func anEndpointThatDoesNotAnswerHoldsOnlyItsOwnSlotsWhileAnotherEndpointsDeliveriesGoOn() async throws {
        // The slow endpoint answers only when the test opens the gate, so what happens while
        // it holds its slots does not depend on how fast the machine is.
        let gate = Gate()
        defer { gate.open() }
        let slow = try TestHTTPReceiver { _, _ in
            gate.wait()
            return .status(200)
        }
        let fast = try TestHTTPReceiver()
        // The slow endpoint's deliveries are older and more than one outbox read holds, so a
        // relay that read the outbox blindly would see nothing else.
        var slowEntries: [OutboxEntry] = []
        for index in 0..<6 { slowEntries.append(try await enqueue(slow.url(), dueIn: .seconds(-60 + index))) }
        var fastEntries: [OutboxEntry] = []
        for _ in 0..<5 { fastEntries.append(try await enqueue(fast.url())) }
        let relay = startRelay(schedule: [.milliseconds(100), .milliseconds(100), .milliseconds(100)], maxPerEndpoint: 2, batchSize: 3, timeout: .seconds(600))
        defer { relay.cancel() }

        try await eventually("the fast endpoint's deliveries") {
            for entry in fastEntries where !(try await isDelivered(entry.id)) { return false }
            return true
        }
        #expect(Set(fast.requests.compactMap { $0.headers["webhook-id"] }) == Set(fastEntries.map(\.id)))
        // All of them went through while the slow endpoint held its two slots, and only two.
        try await eventually("the slow endpoint's two slots to be taken") { slow.inFlight >= 2 }
        #expect(slow.requests.count == 2)
        for entry in slowEntries { #expect(try await stored(entry.id)?.attempts == 0) }

        gate.open()
        try await eventually("the slow endpoint's deliveries") {
            for entry in slowEntries where !(try await isDelivered(entry.id)) { return false }
            return true
        }
        #expect(slow.mostInFlight == 2)
        #expect(Set(slow.requests.compactMap { $0.headers["webhook-id"] }) == Set(slowEntries.map(\.id)))
    }

    /// With every slot of the relay taken by one endpoint's backlog, another endpoint's delivery
    /// gets the next slot that comes free, instead of waiting for the backlog to end.
    @Test func aBacklogThatHoldsEverySlotLetsAnotherEndpointHaveTheNextOne() async throws {
        let order = Mutex<[String]>([])
        let gate = Gate()
        defer { gate.open() }
        let busy = try TestHTTPReceiver { _, index in
            if index == 0 { gate.wait() }
            order.withLock { $0.append("busy") }
            return .status(200)
        }
        let other = try TestHTTPReceiver { _, _ in
            order.withLock { $0.append("other") }
            return .status(200)
        }
        for _ in 0..<4 { try await enqueue(busy.url()) }
        let relay = startRelay(maxPerEndpoint: 1, maxInFlight: 1)
        defer { relay.cancel() }
        try await eventually("the busy endpoint's first request in flight") { busy.inFlight == 1 }
        let waiting = try await enqueue(other.url())
        try await eventually("the other endpoint's delivery taken") { try await stored(waiting.id).map { $0.nextAttempt > waiting.nextAttempt } ?? false }

        gate.open()
        try await eventually("all delivered") { order.withLock { $0.count } == 5 }
        #expect(order.withLock { $0 } == ["busy", "other", "busy", "busy", "busy"])
    }

    @Test func aRequestThatTimesOutIsRecordedAsTimedOutAndTriedAgain() async throws {
        let slow = try TestHTTPReceiver { _, _ in .hang }
        let entry = try await enqueue(slow.url())
        let relay = startRelay(schedule: [.milliseconds(100), .milliseconds(100)], timeout: .seconds(1))
        defer { relay.cancel() }

        try await eventually("a timed-out attempt to be recorded") {
            try await stored(entry.id).map { $0.attempts >= 1 && $0.lastError?.contains("timedOut") == true } ?? false
        }
        try await eventually("the endpoint to be tried again") { slow.requests.count >= 2 }
        #expect(Set(slow.requests.compactMap { $0.headers["webhook-id"] }) == [entry.id])
    }

    @Test func theSSRFGuardRefusesALoopbackTargetWhenLoopbackIsNotAllowed() async throws {
        let receiver = try TestHTTPReceiver()
        let entry = try await enqueue("http://localhost:\(receiver.port)/callback")
        let relay = startRelay(schedule: [.seconds(60)], policy: .publicOnly)
        defer { relay.cancel() }

        try await eventually("the refused attempt") { try await stored(entry.id).map { $0.attempts == 1 } ?? false }
        let failed = try #require(try await stored(entry.id))
        #expect(failed.lastError?.contains("addressRefused") == true)
        #expect(failed.lastError?.contains("loopback") == true)
        #expect(receiver.requests.isEmpty)
    }

    @Test(arguments: [
        ("application/xml", "<Response><EventName>TaskFinish</EventName><JobsDetail><State>Success</State></JobsDetail></Response>"),
        ("application/json", #"{"EventName":"TaskFinish","JobsDetail":{"State":"Success","Message":"é ✓"}}"#),
    ])
    func theSignatureVerifiesWithAnImplementationWeDidNotWrite(_ contentType: String, _ body: String) async throws {
        let receiver = try TestHTTPReceiver()
        let entry = try await enqueue(receiver.url(), body: body, contentType: contentType)
        let before = SystemTimeSource().now.seconds
        let relay = startRelay()
        defer { relay.cancel() }

        try await eventually("the delivery") { !receiver.requests.isEmpty }
        let after = SystemTimeSource().now.seconds
        let request = try #require(receiver.requests.first)
        #expect(request.headers["webhook-id"] == entry.id)
        // The time of sending, in seconds.
        let timestamp = try #require(Int64(request.headers["webhook-timestamp"] ?? ""))
        #expect(before <= timestamp && timestamp <= after)
        #expect(request.headers["webhook-signature"]?.hasPrefix("v1,") == true)
        #expect(request.text == body)
        #expect(request.headers["content-type"] == contentType)

        let secret = try await store.webhookSecret(bucket: "b-1")
        #expect(secret.hasPrefix("whsec_"))
        #expect(WebhookSecret.keyBytes(secret)?.count == 32)
        let verdicts = try await WebhookVerifier.verify(secret: secret, headers: request.headers, body: request.body)
        #expect(verdicts["stdlib"] == "ok")
        if WebhookVerifier.hasPackage { #expect(verdicts["standardwebhooks"] == "ok") }
        // A tampered body does not verify.
        let tampered = try await WebhookVerifier.verify(secret: secret, headers: request.headers, body: request.body + [32])
        #expect(tampered["stdlib"] == "mismatch")
    }
}

/// A flag a receiver's reply closure can read.
final class Flag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}

@Suite struct HTTPDeliveryRulesTests {
    @Test func theSignerMatchesTheStandardWebhooksTestVector() throws {
        let signer = try #require(WebhookSigner(secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        let signature = signer.signature(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330, body: Array(#"{"test": 2432232314}"#.utf8))
        #expect(signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    @Test func afterARotationCallbacksCarryBothSignaturesUntilTheGracePeriodEnds() async throws {
        let store = MemoryJobStore()
        let time = ManualTimeSource(Timestamp(seconds: 1_700_000_000))
        let signers = CallbackSigners(store: store, time: time, refresh: .seconds(100))
        let body = Array("<Response/>".utf8)
        func signatures() async throws -> [String] {
            try await signers.signature(bucket: "b", id: "e1", timestamp: 1, body: body).split(separator: " ").map(String.init)
        }
        func expected(_ secret: String) throws -> String {
            try #require(WebhookSigner(secret: secret)).signature(id: "e1", timestamp: 1, body: body)
        }
        let old = try await store.webhookSecret(bucket: "b")
        #expect(try await signatures() == [try expected(old)])

        let rotated = try await store.rotateSigningSecret(bucket: "b", now: time.now, grace: .seconds(120))
        // Read again only after the refresh interval: until then the node signs as before.
        time.advance(by: .seconds(50))
        #expect(try await signatures() == [try expected(old)])
        time.advance(by: .seconds(50))
        #expect(try await signatures() == [try expected(rotated.current), try expected(old)])
        // The grace period ends between two reads: the old secret is dropped without one.
        time.advance(by: .seconds(19))
        #expect(try await signatures().count == 2)
        time.advance(by: .seconds(1))
        #expect(try await signatures() == [try expected(rotated.current)])
    }

    @Test func outcomesFollowTheStatus() {
        let now = Timestamp(seconds: 1_700_000_000)
        #expect(HTTPDeliveryOutcome(response: HTTPResponse(status: 200), now: now) == .delivered)
        #expect(HTTPDeliveryOutcome(response: HTTPResponse(status: 204), now: now) == .delivered)
        #expect(HTTPDeliveryOutcome(response: HTTPResponse(status: 410), now: now) == .gone("HTTP 410 Gone"))
        #expect(HTTPDeliveryOutcome(response: HTTPResponse(status: 302), now: now) == .retry("HTTP 302", retryAfter: nil))
        #expect(HTTPDeliveryOutcome(response: HTTPResponse(status: 404, body: Array("nope".utf8)), now: now) == .retry("HTTP 404: nope", retryAfter: nil))
        // PostgreSQL would refuse to store a NUL, and the attempt could never be recorded.
        #expect(HTTPDeliveryOutcome(response: HTTPResponse(status: 500, body: [0x62, 0, 0x61, 0x64, 0]), now: now) == .retry("HTTP 500: bad", retryAfter: nil))
        let throttled = HTTPResponse(status: 429, headers: [HTTPHeader("retry-after", "7")])
        #expect(HTTPDeliveryOutcome(response: throttled, now: now) == .retry("HTTP 429", retryAfter: .seconds(7)))
    }

    @Test func endpointsAreHostAndPort() {
        #expect(CallbackEndpoint.of(url: "http://Example.com/cb") == "example.com:80")
        #expect(CallbackEndpoint.of(url: "https://example.com/cb?x") == "example.com:443")
        #expect(CallbackEndpoint.of(url: "http://user:pw@example.com:8080") == "example.com:8080")
        #expect(CallbackEndpoint.of(url: "http://[::1]:9000/x") == "[::1]:9000")
        #expect(CallbackEndpoint.of(url: "http://127.0.0.1:18080/a") == CallbackEndpoint.of(url: "http://127.0.0.1:18080/b"))
    }

    @Test func secretsAreWhsecAndBase64() {
        let secret = WebhookSecret.generate()
        #expect(secret.hasPrefix("whsec_"))
        #expect(WebhookSecret.keyBytes(secret)?.count == 32)
        #expect(WebhookSecret.generate() != secret)
        #expect(WebhookSecret.base64(Array("hello".utf8)) == "aGVsbG8=")
        #expect(WebhookSecret.decodeBase64("aGVsbG8=") == Array("hello".utf8))
        #expect(WebhookSecret.decodeBase64("aGVsbG8") == Array("hello".utf8))
    }
}
