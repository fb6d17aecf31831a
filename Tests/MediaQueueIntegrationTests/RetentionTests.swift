import Foundation
import MediaQueueAMQP
import MediaQueueApp
import MediaQueueCore
import MediaQueueTestSupport
import Testing

/// A running service with a retention period removes a job once it ended longer ago than that
/// (which deliveries go with it: RetentionContractTests, on SQLite and PostgreSQL).
@Suite struct RetentionTests {
    @Test func anEndedJobIsRemovedOnceItsRetentionHasPassed() async throws {
        let harness = try ServiceHarness {
            $0.enableNoop = true
            $0.retentionDays = 1.0 / 86_400  // one second
            $0.retentionSweepSeconds = 1
        }
        let (application, service) = try harness.startService()
        defer { service.cancel() }
        try await harness.waitForIntake()
        let events = try await harness.subscribeToEvents()

        try await harness.publish("<Request><Tag>Noop</Tag><Input><Object>in/a.mp4</Object></Input><Operation><UserData>kept a second</UserData></Operation></Request>")
        let event = try #require(try await harness.receive(1, from: events).first)
        let body = String(decoding: event.body, as: UTF8.self)
        let id = try #require(body.firstMatch(of: /<JobId>(j[0-9a-f]{32})<\/JobId>/)?.1)
        #expect(body.contains("<State>Success</State>"))

        try await eventually("the ended job to be removed") {
            try await application.store.job(id: JobID(rawValue: String(id))) == nil
        }
    }
}
