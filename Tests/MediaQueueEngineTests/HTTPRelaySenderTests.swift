import Logging
import MediaQueueCore
import MediaQueueHTTPClient
import MediaQueueTestSupport
import Testing
@testable import MediaQueueEngine

/// The HTTP relay's senders fed by hand, against a real receiver on loopback: what they do with
/// a delivery that waited in its endpoint's queue until little of its lease was left.
@Suite struct HTTPRelaySenderTests {
    /// Sent, the request could outlast the lease, or end too near its end for the result to be
    /// written (the lease margin), and another relay could take the delivery then and send it
    /// too: it is given back unsent (due again at once), and the next one goes out.
    @Test func aDeliveryWhoseLeaseCouldEndDuringItsRequestIsGivenBackUnsent() async throws {
        let receiver = try TestHTTPReceiver()
        let clock = ManualTimeSource()
        let store = MemoryJobStore(time: clock)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let timeout = Duration.seconds(10)
        let client = HTTPClient(configuration: HTTPClientConfiguration(
            connectTimeout: .seconds(5), timeout: timeout, addressPolicy: AddressPolicy(allowedNetworks: [IPNetwork("127.0.0.0/8")!])
        ))
        let options = HTTPRelayOptions()
        let relay = HTTPRelayService(store: store, client: client, options: options, time: clock, wakeup: Wakeup(time: clock), logger: logger)
        func delivery() -> OutboxEntry {
            OutboxEntry(
                jobID: JobID.generate(), bucket: "b-1", target: .url("http://127.0.0.1:\(receiver.port)/hook"), routingKey: "job.x",
                body: Array("<Response/>".utf8), contentType: "application/xml", nextAttempt: clock.now, createdAt: clock.now
            )
        }
        let (short, ample) = (delivery(), delivery())
        let flights = Flights()
        flights.enqueue([
            Flights.Leased(entry: short, leaseUntil: clock.now + timeout + options.leaseMargin - .seconds(1)),
            Flights.Leased(entry: ample, leaseUntil: clock.now + timeout + options.leaseMargin),
        ])

        await withDiscardingTaskGroup { group in relay.startSenders(flights, group: &group) }

        let outcomes = Dictionary(uniqueKeysWithValues: flights.takeFinished().map { ($0.entry.id, $0.outcome) })
        #expect(outcomes[short.id] == .cancelled, "not sent: its lease could end before its result is written")
        #expect(outcomes[ample.id] == .delivered)
        #expect(receiver.requests.map { $0.headers["webhook-id"] } == [ample.id])
    }
}
