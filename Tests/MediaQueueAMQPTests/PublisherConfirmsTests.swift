import Testing
@testable import MediaQueueAMQP

/// How acks, nacks, returns and a lost channel settle publishes, without a broker.
@Suite struct PublisherConfirmsTests {
    typealias Confirms = PublisherConfirms<String>

    func register(_ confirms: inout Confirms, _ names: [String], mandatory: Bool = false, routingKey: String = "k") -> [UInt64] {
        names.map { confirms.register($0, mandatory: mandatory, exchange: "x", routingKey: routingKey, messageID: $0) }
    }

    func outcomes(_ settled: [(token: String, result: Result<Void, AMQPError>)]) -> [String] {
        settled.map { token, result in
            switch result {
            case .success: "\(token) ok"
            case .failure(let error): "\(token) \(error.code == .nacked ? "nacked" : error.code == .returned ? "returned" : "failed")"
            }
        }
    }

    @Test func tagsCountFromOneAndSingleAcksSettleOnlyTheirPublish() {
        var confirms = Confirms()
        let tags = register(&confirms, ["a", "b", "c"])
        #expect(tags == [1, 2, 3])
        let second = outcomes(confirms.confirm(upTo: 2, multiple: false, acked: true))
        let again = outcomes(confirms.confirm(upTo: 2, multiple: false, acked: true))
        let first = outcomes(confirms.confirm(upTo: 1, multiple: false, acked: true))
        #expect(second == ["b ok"])
        #expect(again.isEmpty, "a tag is settled once")
        #expect(first == ["a ok"])
        #expect(confirms.count == 1)
    }

    @Test func aMultipleAckSettlesEverythingUpToItsTagOldestFirst() {
        var confirms = Confirms()
        _ = register(&confirms, ["a", "b", "c", "d"])
        _ = confirms.confirm(upTo: 2, multiple: false, acked: true)
        let acked = outcomes(confirms.confirm(upTo: 3, multiple: true, acked: true))
        let nacked = outcomes(confirms.confirm(upTo: 4, multiple: true, acked: false))
        #expect(acked == ["a ok", "c ok"])
        #expect(nacked == ["d nacked"])
        #expect(confirms.isEmpty)
    }

    @Test func aReturnMarksTheOldestMatchingMandatoryPublishAndItsAckFailsIt() {
        var confirms = Confirms()
        _ = register(&confirms, ["plain"], routingKey: "gone")
        _ = register(&confirms, ["first", "second"], mandatory: true, routingKey: "gone")
        let matched = confirms.markReturned(exchange: "x", routingKey: "gone", messageID: "second", reason: "312 NO_ROUTE")
        let notMandatory = confirms.markReturned(exchange: "x", routingKey: "gone", messageID: "plain", reason: "312 NO_ROUTE")
        let otherKey = confirms.markReturned(exchange: "x", routingKey: "other", messageID: "first", reason: "312 NO_ROUTE")
        #expect(matched)
        #expect(!notMandatory, "not mandatory: never returned")
        #expect(!otherKey)
        let settled = confirms.confirm(upTo: 3, multiple: true, acked: true)
        #expect(outcomes(settled) == ["plain ok", "first ok", "second returned"])
        if case .failure(let error) = settled[2].result { #expect(error.message.contains("312 NO_ROUTE")) }
    }

    @Test func aLostChannelAbandonsEveryPublishOldestFirstAndANewChannelCountsFromOne() {
        var confirms = Confirms()
        _ = register(&confirms, ["a", "b", "c"])
        _ = confirms.confirm(upTo: 2, multiple: false, acked: true)
        let abandoned = confirms.abandonAll()
        #expect(abandoned == ["a", "c"])
        #expect(confirms.isEmpty)
        confirms.channelOpened()
        let tags = register(&confirms, ["d"])
        #expect(tags == [1])
    }
}
