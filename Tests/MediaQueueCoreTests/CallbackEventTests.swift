import MediaQueueCore
import MediaQueueXML
import Testing

/// Which events go where: the rule's `Event` list and a job's `CallBackEvent` (beyond CI), with
/// `TaskProgress` beside CI's `TaskFinish`.
@Suite struct CallbackEventTests {
    func rule(_ events: String, type: String = "TDMQ", mqName: String = "events") throws -> NotifyConfig {
        try NotifyConfig(xml: XMLDocumentParser.parse("""
            <NotifyConfig><State>On</State><Event>\(events)</Event><Type>\(type)</Type><Url>https://example.com/cb</Url>
            <MqMode>Topic</MqMode><MqName>\(mqName)</MqName><MqRegion>sh</MqRegion></NotifyConfig>
            """))
    }

    func job(_ fields: String) throws -> CallbackOverride {
        try CallbackOverride(request: XMLDocumentParser.parse("<Request>\(fields)</Request>"))
    }

    @Test func aRuleListsTaskProgressBesideTaskFinishInAnyCase() throws {
        let config = try rule("TaskFinish, taskprogress")
        #expect(config.events == [.taskFinish, .taskProgress])
        #expect(config.xml.text("Event") == "TaskFinish,TaskProgress")
        #expect(CallbackTarget.resolve(rule: config, override: CallbackOverride(), event: .taskProgress)?.destination == .mq(mode: .topic, name: "events", region: "sh"))
        #expect(CallbackTarget.resolve(rule: try rule("TaskFinish"), override: CallbackOverride(), event: .taskProgress) == nil)
    }

    @Test func aJobsCallBackEventReplacesTheRulesEvents() throws {
        let progressOnly = try job("<CallBackEvent>TaskProgress</CallBackEvent>")
        #expect(progressOnly.events == [.taskProgress])
        let config = try rule("TaskFinish")
        #expect(CallbackTarget.resolve(rule: config, override: progressOnly, event: .taskProgress) != nil)
        #expect(CallbackTarget.resolve(rule: config, override: progressOnly, event: .taskFinish) == nil)
    }

    @Test func aJobsOwnURLAnnouncesTaskFinishUnlessItAsksForMore() throws {
        let config = try rule("TaskFinish", type: "Url")
        let own = try job("<CallBack>https://example.com/own</CallBack>")
        #expect(CallbackTarget.resolve(rule: config, override: own, event: .taskFinish)?.destination == .url("https://example.com/own"))
        #expect(CallbackTarget.resolve(rule: config, override: own, event: .taskProgress) == nil)
        let both = try job("<CallBack>https://example.com/own</CallBack><CallBackEvent>TaskFinish,TaskProgress</CallBackEvent>")
        #expect(CallbackTarget.resolve(rule: config, override: both, event: .taskProgress)?.destination == .url("https://example.com/own"))
        let silenced = try job("<CallBack>no</CallBack><CallBackEvent>TaskProgress</CallBackEvent>")
        #expect(CallbackTarget.resolve(rule: config, override: silenced, event: .taskProgress) == nil)
    }

    @Test func unknownOrWorkflowEventsOnAJobAreRefusedNamingTheField() throws {
        #expect(throws: CIError(.invalidArgument, "CallBackEvent: unknown event 'Done'", element: "CallBackEvent")) { try job("<CallBackEvent>TaskFinish,Done</CallBackEvent>") }
        #expect(throws: CIError.self) { try job("<CallBackEvent>WorkflowFinish</CallBackEvent>") }
        #expect(throws: CIError(.invalidArgument, "NotifyConfig.Event: unknown event 'Started'", element: "NotifyConfig.Event")) { try rule("TaskFinish,Started") }
    }

    /// A name no broker can declare (an AMQP name holds 255 bytes) made every delivery fail
    /// until its retries ran out: new rules and jobs naming one are refused (the API's and the
    /// intake's tests), and what was stored before the check still loads.
    @Test func aQueueOrTopicNameNoBrokerTakesIsRefusedYetAStoredOneStillLoads() throws {
        let longest = String(repeating: "q", count: NotifyConfig.maxMqNameBytes)
        #expect(throws: Never.self) { try NotifyConfig.checkMqName(longest, element: "NotifyConfig.MqName") }
        #expect(throws: CIError(.invalidArgument, "NotifyConfig.MqName: must be at most 255 bytes", element: "NotifyConfig.MqName")) {
            try NotifyConfig.checkMqName("ü" + String(longest.dropFirst()), element: "NotifyConfig.MqName")
        }
        #expect(throws: CIError(.invalidArgument, "CallBackMqConfig.MqName: must not contain control characters", element: "CallBackMqConfig.MqName")) {
            try NotifyConfig.checkMqName("a\tb", element: "CallBackMqConfig.MqName")
        }
        let stored = longest + "q"
        #expect(try rule("TaskFinish", mqName: stored).mqName == stored)
        let job = try job("<CallBackType>TDMQ</CallBackType><CallBackMqConfig><MqName>\(stored)</MqName><MqRegion>sh</MqRegion></CallBackMqConfig>")
        #expect(job.mq?.name == stored)
    }

    /// Every bucket's TDMQ callbacks go to the service's one broker: a job or rule naming the
    /// intake queue could plant a submission, one naming the events exchange a TaskFinish; with
    /// `bucketPrefix` (several tenants on one service) a bucket names only its own queues.
    @Test func aCallbackNamesNoneOfTheServicesOwnQueuesAndWithBucketPrefixOnlyItsBucketsOwn() throws {
        let policy = MqNamePolicy(reserved: ["mediaqueue.jobs", "job-events"])
        #expect(throws: CIError(.invalidArgument, "CallBackMqConfig.MqName: 'mediaqueue.jobs' is one of the service's own queues or exchanges", element: "CallBackMqConfig.MqName")) {
            try policy.check("mediaqueue.jobs", bucket: "a-1", element: "CallBackMqConfig.MqName")
        }
        #expect(throws: CIError.self) { try policy.check("job-events", bucket: "a-1", element: "NotifyConfig.MqName") }
        #expect(throws: CIError.self) { try policy.check("amq.topic", bucket: "a-1", element: "NotifyConfig.MqName") }
        #expect(throws: Never.self) { try policy.check("b-2.done", bucket: "a-1", element: "NotifyConfig.MqName") }

        let tenants = MqNamePolicy(reserved: ["mediaqueue.jobs"], bucketPrefix: true)
        #expect(throws: Never.self) { try tenants.check("a-1.done", bucket: "a-1", element: "NotifyConfig.MqName") }
        #expect(throws: CIError(.invalidArgument, "NotifyConfig.MqName: must start with the bucket's name and a dot ('a-1.')", element: "NotifyConfig.MqName")) {
            try tenants.check("b-2.done", bucket: "a-1", element: "NotifyConfig.MqName")
        }
        #expect(throws: CIError.self) { try tenants.check("a-1", bucket: "a-1", element: "NotifyConfig.MqName") }
    }
}
