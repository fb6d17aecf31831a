import MediaQueueCore
import Testing

/// CI's UpdateMediaQueue rules, which the API and the CLI share.
@Suite struct QueueUpdateTests {
    static func queue(name: String = "queue-2") -> MediaQueue { MediaQueue(bucket: "b-1250000000", name: name, createTime: Timestamp(seconds: 1_700_000_000)) }

    static func update(_ body: String) throws -> QueueUpdateRequest { try QueueUpdateRequest.parse(Array("<Request>\(body)</Request>".utf8)) }

    @Test func nameStateAndRuleAreAppliedWhenGivenAndTheRestIsKept() throws {
        var queue = Self.queue()
        try queue.apply(try Self.update("<State>paused</State>"), checkRule: { _, _ in })
        #expect(queue.state == .paused)
        #expect(queue.name == "queue-2")
        try queue.apply(try Self.update("""
            <Name>renamed</Name><NotifyConfig><State>On</State><Type>Url</Type><Event>TaskFinish</Event>
            <Url>https://example.com/cb</Url></NotifyConfig>
            """), checkRule: { _, _ in })
        #expect(queue.name == "renamed")
        #expect(queue.state == .paused)
        #expect(queue.notifyConfig.url == "https://example.com/cb")
    }

    /// Submissions without a QueueId go to the bucket's queue of that name on every node: a
    /// renamed one was not found by the next node to look, which made a second `queue-1`.
    @Test func theDefaultQueueKeepsItsName() throws {
        var queue = Self.queue(name: MediaQueue.defaultName)
        let error = #expect(throws: CIError.self) { try queue.apply(try Self.update("<Name>renamed</Name>"), checkRule: { _, _ in }) }
        #expect(error?.element == "Name")
        try queue.apply(try Self.update("<Name>queue-1</Name><State>Paused</State>"), checkRule: { _, _ in })
        #expect(queue.name == "queue-1" && queue.state == .paused, "its own name, sent again, is no rename")
    }

    @Test func aRefusedRuleChangesNothing() throws {
        var queue = Self.queue()
        let before = queue
        let update = try Self.update("""
            <Name>renamed</Name><State>Paused</State><NotifyConfig><State>On</State><Type>Url</Type><Event>TaskFinish</Event>
            <Url>http://10.0.0.8/cb</Url></NotifyConfig>
            """)
        let error = #expect(throws: CIError.self) {
            try queue.apply(update, checkRule: { _, _ throws(CIError) in throw CIError(.invalidArgument, "private address", element: "NotifyConfig.Url") })
        }
        #expect(error?.element == "NotifyConfig.Url")
        #expect(queue == before)
    }

    /// CI's UpdateMediaQueue carries the rule with every change: the rule read back and sent again
    /// unchanged (a default queue's, on the events exchange) is not checked again, where a pause
    /// sent with it was refused; a changed one is.
    @Test func aRuleSentAgainUnchangedIsNotCheckedAgain() throws {
        var queue = Self.queue()
        queue.notifyConfig = .topic("job-events")
        let refuseEveryRule: (NotifyConfig, String) throws(CIError) -> Void = { _, _ throws(CIError) in
            throw CIError(.invalidArgument, "refused", element: "NotifyConfig.MqName")
        }
        try queue.apply(QueueUpdateRequest(state: .paused, notifyConfig: .topic("job-events")), checkRule: refuseEveryRule)
        #expect(queue.state == .paused)
        #expect(throws: CIError.self) { try queue.apply(QueueUpdateRequest(notifyConfig: .topic("elsewhere")), checkRule: refuseEveryRule) }
        #expect(queue.notifyConfig == .topic("job-events"))
    }

    @Test(arguments: [("Active", MediaQueue.State.active), ("paused", .paused), ("PAUSED", .paused), ("aCtIvE", .active)])
    func statesAreReadInAnyLetterCase(_ text: String, _ state: MediaQueue.State) {
        #expect(MediaQueue.State(anyCase: text) == state)
    }

    @Test func otherStatesAreRefused() throws {
        #expect(MediaQueue.State(anyCase: "All") == nil)
        let error = #expect(throws: CIError.self) { try Self.update("<State>Running</State>") }
        #expect(error?.message.contains("Active or Paused") == true)
    }

    @Test func limitsOutsideTheirRangesAreRefusedAndNeitherIsSet() throws {
        var queue = Self.queue()
        try queue.setLimits(maxConcurrent: 10_000, maxSize: 1)
        #expect(queue.maxConcurrent == 10_000 && queue.maxSize == 1)
        let before = queue
        let tooMany = #expect(throws: CIError.self) { try queue.setLimits(maxConcurrent: 10_001) }
        #expect(tooMany?.message == "MaxConcurrent: must be a whole number from 1 to 10000, not 10001")
        let none = #expect(throws: CIError.self) { try queue.setLimits(maxConcurrent: 5, maxSize: 0) }
        #expect(none?.message == "MaxSize: must be a whole number from 1 to 100000000, not 0")
        #expect(queue == before, "the valid MaxConcurrent beside the refused MaxSize was not set either")
    }

    @Test func queueNamesFollowCIsRule() throws {
        try MediaQueue.validateName("queue_2-*")
        for bad in ["", "no spaces", "slash/", String(repeating: "q", count: 129)] {
            #expect(throws: CIError.self, "\(bad)") { try MediaQueue.validateName(bad) }
        }
    }
}
