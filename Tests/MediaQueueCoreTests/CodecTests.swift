import Foundation
import MediaQueueCore
import MediaQueueXML
import Testing

@Suite struct CreateMediaJobsRequestTests {
    static func parse(_ xml: String, validate: (CreateMediaJobsRequest.Operation) throws(CIError) -> Void = { _ in }) throws(CIError) -> CreateMediaJobsRequest {
        try CreateMediaJobsRequest.parse(Array(xml.utf8), validate: validate)
    }

    @Test func parsesASingleOperationWithCallbackOverrides() throws {
        let request = try Self.parse("""
            <Request>
              <Tag>Snapshot</Tag>
              <Input><Object>input/demo.mp4</Object></Input>
              <Operation>
                <Snapshot><Mode>Interval</Mode><Start>1</Start><TimeInterval>2</TimeInterval><Count>3</Count></Snapshot>
                <Output><Region>ap-chongqing</Region><Bucket>test-123456789</Bucket><Object>out/snap-${Number}.jpg</Object></Output>
                <UserData>This is my data.</UserData>
                <JobLevel>2</JobLevel>
              </Operation>
              <QueueId>p2242ab62c7c94486915508540933a2c6</QueueId>
              <CallBackFormat>JSON</CallBackFormat>
              <CallBackType>TDMQ</CallBackType>
              <CallBackMqConfig><MqRegion>bj</MqRegion><MqMode>Topic</MqMode><MqName>events</MqName></CallBackMqConfig>
            </Request>
            """)
        #expect(request.queueID?.rawValue == "p2242ab62c7c94486915508540933a2c6")
        #expect(request.operations.count == 1)
        let operation = request.operations[0]
        #expect(operation.tag == "Snapshot")
        #expect(operation.jobLevel == 2)
        #expect(operation.input.text("Object") == "input/demo.mp4")
        #expect(operation.operation.text("Snapshot", "Count") == "3")
        #expect(request.callback.format == .json)
        #expect(request.callback.mq == CallbackOverride.MqTarget(mode: .topic, name: "events", region: "bj"))
    }

    @Test func severalOperationsEachWithTheirOwnTag() throws {
        let request = try Self.parse("""
            <Request><Input><Object>a.mp4</Object></Input>
            <Operation><Tag>MediaInfo</Tag></Operation>
            <Operation><Tag>Snapshot</Tag><JobLevel>1</JobLevel></Operation></Request>
            """)
        #expect(request.operations.map(\.tag) == ["MediaInfo", "Snapshot"])
        #expect(request.operations.map(\.jobLevel) == [0, 1])
        // JobLevel is always echoed, even when the client left it out.
        #expect(request.operations[0].operation.text("JobLevel") == "0")
        #expect(request.operations[1].operation["Tag"] == nil)
    }

    @Test(arguments: [
        ("<Request><Tag>Snapshot</Tag><Input><Object>a</Object></Input><Operation><JobLevel>7</JobLevel></Operation></Request>", "Operation.JobLevel"),
        ("<Request><Tag>Snapshot</Tag><Input><Object>a</Object></Input><Operation><JobLevel>high</JobLevel></Operation></Request>", "Operation.JobLevel"),
        ("<Request><Tag>Snapshot</Tag><Operation/></Request>", "Input"),
        ("<Request><Input><Object>a</Object></Input><Operation/></Request>", "Tag"),
        ("<Request><Tag>Snapshot</Tag><Input><Object>a</Object></Input></Request>", "Operation"),
        ("<Request><Tag>Snapshot</Tag>", "Request"),
        ("not xml at all", "Request"),
        ("<Job><Tag>Snapshot</Tag></Job>", "Job"),
        ("<Request><Tag>S</Tag><Input><Object>a</Object></Input><Operation/><CallBack>ftp://x</CallBack></Request>", "CallBack"),
        ("<Request><Tag>S</Tag><Input><Object>a</Object></Input><Operation/><CallBackType>TDMQ</CallBackType></Request>", "CallBackMqConfig"),
    ])
    func badRequestsNameTheElement(_ body: String, _ element: String) {
        do {
            _ = try Self.parse(body)
            Issue.record("accepted \(body)")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.element == element, "\(error)")
        }
    }

    @Test func validationByTagRunsForEveryOperation() {
        #expect(throws: CIError.self) {
            try Self.parse("<Request><Tag>Unknown</Tag><Input><Object>a</Object></Input><Operation/></Request>") { operation throws(CIError) in
                if operation.tag != "Snapshot" { throw CIError(.unsupportedTag, "unsupported tag \(operation.tag)", element: "Tag") }
            }
        }
    }

    @Test func userDataOver1024BytesIsRefused() {
        let data = String(repeating: "x", count: 1025)
        #expect(throws: CIError.self) {
            try Self.parse("<Request><Tag>S</Tag><Input><Object>a</Object></Input><Operation><UserData>\(data)</UserData></Operation></Request>")
        }
    }

    @Test func jsonSubmissionsAreAcceptedToo() throws {
        let request = try Self.parse(#"{"Tag":"MediaInfo","Input":{"Object":"in/a.mp4"},"Operation":{"JobLevel":1,"UserData":"u"}}"#)
        #expect(request.operations.first?.tag == "MediaInfo")
        #expect(request.operations.first?.jobLevel == 1)
        #expect(request.operations.first?.operation.text("UserData") == "u")
    }

    @Test func pathsOutsideTheBucketAreRefused() throws {
        let request = try Self.parse("<Request><Tag>S</Tag><Input><Object>../etc/passwd</Object></Input><Operation><Output><Object>/abs</Object></Output></Operation></Request>")
        #expect(throws: CIError.self) { try request.operations[0].requireInput() }
        #expect(throws: CIError.self) { try request.operations[0].requireOutputObject() }
    }
}

@Suite struct QueueUpdateRequestTests {
    @Test func parsesTheSpecExample() throws {
        let update = try QueueUpdateRequest.parse(Array("""
            <Request>
              <Name>My-Queue-Media</Name>
              <State>Active</State>
              <NotifyConfig>
                <State>On</State>
                <Url>http://callback.demo.com</Url>
                <Type>URL</Type>
                <Event>TaskFinish,WorkflowFinish</Event>
                <ResultFormat>JSON</ResultFormat>
              </NotifyConfig>
            </Request>
            """.utf8))
        #expect(update.name == "My-Queue-Media")
        #expect(update.state == .active)
        let config = try #require(update.notifyConfig)
        #expect(config.isOn && config.type == .url && config.resultFormat == .json)
        #expect(config.events == [.taskFinish, .workflowFinish])
        // Printed back the way CI prints it: `Url`, not `URL`.
        #expect(config.xml.text("Type") == "Url")
    }

    @Test func aTopicRuleNeedsAName() {
        #expect(throws: CIError.self) {
            try QueueUpdateRequest.parse(Array("<Request><NotifyConfig><State>On</State><Type>TDMQ</Type><Event>TaskFinish</Event><MqMode>Topic</MqMode></NotifyConfig></Request>".utf8))
        }
    }

    @Test func legacyEventNamesAreUnderstood() throws {
        let config = try NotifyConfig(xml: XMLDocumentParser.parse("<NotifyConfig><Event>TransCodingFinish,WorkflowFinishh</Event></NotifyConfig>"))
        #expect(config.events == [.taskFinish, .workflowFinish])
    }
}

@Suite struct CallbackTests {
    static let queueID = QueueID(rawValue: "p2242ab62c7c94486915508540933a2c6")

    static func finishedJob() -> Job {
        Job(
            id: JobID(rawValue: "j06668dc0f86811ecb90d0b03267ce0e5"), bucket: "test-123456789", queueID: queueID,
            tag: "Snapshot", state: .success, jobLevel: 1,
            input: XMLTree("Input", children: [XMLTree("Object", text: "input/demo.mp4")]),
            operation: XMLTree("Operation", children: [
                XMLTree("Output", children: [XMLTree("Object", text: "out/${Number}.jpg")]),
                XMLTree("UserData", text: "id:1 <&>"),
                XMLTree("JobLevel", text: "1"),
            ]),
            creationTime: Timestamp(seconds: 1_656_588_620), startTime: Timestamp(seconds: 1_656_588_621),
            endTime: Timestamp(seconds: 1_656_588_716), progress: 100,
            mediaResult: XMLTree("MediaResult", children: [XMLTree("OutputFile", children: [
                XMLTree("ObjectName", text: "out/0.jpg"), XMLTree("ObjectName", text: "out/1.jpg"),
            ])])
        )
    }

    static let formatting = CIFormatting(times: CITimeFormat(utcOffsetSeconds: 8 * 3600), region: "ap-chongqing")

    @Test func xmlBodyHasTheShapeOfSpec52() throws {
        let body = CallbackBody.taskFinish(Self.finishedJob(), format: .xml, formatting: Self.formatting)
        #expect(body.contentType == "application/xml")
        let tree = try XMLDocumentParser.parse(body.bytes)
        #expect(tree.name == "Response")
        #expect(tree.text("EventName") == "TaskFinish")
        let detail = try #require(tree["JobsDetail"])
        #expect(detail.text("Code") == "Success")
        #expect(detail.text("JobId") == "j06668dc0f86811ecb90d0b03267ce0e5")
        #expect(detail.text("State") == "Success")
        #expect(detail.text("CreationTime") == "2022-06-30T19:30:20+0800")
        #expect(detail.text("EndTime") == "2022-06-30T19:31:56+0800")
        #expect(detail.text("QueueId") == Self.queueID.rawValue)
        #expect(detail.text("Input", "BucketId") == "test-123456789")
        #expect(detail.text("Input", "Region") == "ap-chongqing")
        #expect(detail.text("Operation", "UserData") == "id:1 <&>")
        #expect(detail.text("Operation", "JobLevel") == "1")
        #expect(detail["Operation"]?["MediaResult"]?["OutputFile"]?.all("ObjectName").count == 2)
        #expect(tree["NonExistJobIds"] == nil)
    }

    @Test func jsonBodyHasNoWrapperAndOnlyStrings() throws {
        let body = CallbackBody.taskFinish(Self.finishedJob(), format: .json, formatting: Self.formatting)
        #expect(body.contentType == "application/json")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(body.bytes)) as? [String: Any])
        #expect(object["Response"] == nil)
        #expect(object["EventName"] as? String == "TaskFinish")
        let detail = try #require(object["JobsDetail"] as? [String: Any])
        #expect(detail["Progress"] as? String == "100")
        let operation = try #require(detail["Operation"] as? [String: Any])
        #expect(operation["JobLevel"] as? String == "1")
        #expect(operation["UserData"] as? String == "id:1 <&>")
        let files = (operation["MediaResult"] as? [String: Any])?["OutputFile"] as? [String: Any]
        #expect(files?["ObjectName"] as? [String] == ["out/0.jpg", "out/1.jpg"])
        // Empty elements are left out, as CI leaves out a success's empty Message: a "" where a
        // client expects an object would fail its decoding.
        #expect(detail["Message"] == nil)
        let empty = XMLTree("Response", children: [XMLTree("MediaInfo", children: [XMLTree("Format"), XMLTree("Stream", text: "")]), XMLTree("Kept", text: "0")])
        #expect(JSONTree.serializeChildren(of: empty) == #"{"MediaInfo":{},"Kept":"0"}"#)
    }

    @Test func waitingJobsPrintDashForTimesNotReached() {
        var job = Self.finishedJob()
        job.state = .submitted
        job.startTime = nil
        job.endTime = nil
        let detail = job.jobsDetail(Self.formatting)
        #expect(detail.text("StartTime") == "-")
        #expect(detail.text("EndTime") == "-")
    }

    @Test func theJobsOverrideWinsAndNoSilencesTheRule() {
        let rule = NotifyConfig.topic("events")
        #expect(CallbackTarget.resolve(rule: rule, override: CallbackOverride())?.destination == .mq(mode: .topic, name: "events", region: "sh"))
        #expect(CallbackTarget.resolve(rule: rule, override: CallbackOverride(url: "no")) == nil)
        let url = CallbackTarget.resolve(rule: rule, override: CallbackOverride(url: "http://h/cb", format: .json))
        #expect(url == CallbackTarget(destination: .url("http://h/cb"), format: .json))
        let mq = CallbackOverride(type: .tdmq, mq: .init(mode: .queue, name: "q", region: "bj"))
        #expect(CallbackTarget.resolve(rule: NotifyConfig(), override: mq)?.destination == .mq(mode: .queue, name: "q", region: "bj"))
        var off = rule
        off.isOn = false
        #expect(CallbackTarget.resolve(rule: off, override: CallbackOverride()) == nil)
        var workflowOnly = rule
        workflowOnly.events = [.workflowFinish]
        #expect(CallbackTarget.resolve(rule: workflowOnly, override: CallbackOverride()) == nil)
    }

    @Test func errorBodyIsCIsShape() {
        let xml = CIError(.noSuchJob, "job j1 does not exist").xml(requestID: "req-1").xmlString()
        #expect(xml == "<Error><Code>NoSuchJob</Code><Message>job j1 does not exist</Message><Resource/><RequestId>req-1</RequestId><TraceId>req-1</TraceId></Error>")
    }
}

@Suite struct TimeAndIdentifierTests {
    @Test func formatsAndParsesCITimes() {
        let format = CITimeFormat(utcOffsetSeconds: 8 * 3600)
        let time = Timestamp(seconds: 1_656_314_590)
        #expect(format.format(time) == "2022-06-27T15:23:10+0800")
        #expect(CITimeFormat.parse("2022-06-27T15:23:10+0800") == time)
        #expect(CITimeFormat.parse("2022-06-27T07:23:10Z") == time)
        #expect(CITimeFormat.parse("2022-06-27T15:23:10+08:00") == time)
        #expect(CITimeFormat().format(Timestamp(seconds: 0)) == "1970-01-01T00:00:00+0000")
        #expect(CITimeFormat(utcOffsetSeconds: -5 * 3600 - 1800).format(Timestamp(seconds: 0)) == "1969-12-31T18:30:00-0530")
        #expect(CITimeFormat.parse("yesterday") == nil)
    }

    @Test func jsonRequestsCarryOnlyWhatXMLCanWriteBack() throws {
        func refusal(_ json: String) -> String? {
            do {
                _ = try JSONTree.parse(Array(json.utf8), rootName: "Request")
                return nil
            } catch {
                return error.message
            }
        }
        // A key that is no element name would be written into callbacks as markup of its own.
        #expect(refusal(#"{"Operation":{"UserData><Evil>x</Evil><UserData":"y"}}"#)?.contains("is not a name") == true)
        #expect(refusal(#"{"1st":"x"}"#)?.contains("'1st' is not a name") == true)
        #expect(refusal(#"{"UserData":"bell\u0007"}"#) == "Request.UserData: contains a character XML cannot carry (a control character)")
        let deep = String(repeating: #"{"A":"#, count: 40) + #""x""# + String(repeating: "}", count: 40)
        #expect(refusal(deep)?.contains("nests deeper than 32 levels") == true)
        let tree = try JSONTree.parse(Array(#"{"Tag":"MediaInfo","Operation":{"UserData":"tab\tand\nline","X-y.z_1":"ok"}}"#.utf8), rootName: "Request")
        #expect(try XMLDocumentParser.parse(tree.xmlBytes()) == tree)
    }

    @Test func timesThatCouldNotBeWrittenBackInFourDigitYearsAreRefused() {
        // Found by fuzzing: each parsed, but shown in another offset it left years 0000 to 9999.
        for text in ["0000-01-01T00:00:00+9999", "9999-12-31T23:59:60-9999", "0000-01-01T00:00:00Z", "9999-12-31T12:00:00Z",
                     "2024-01-01T00:00:00+1401", "2024-01-01T00:00:00+0860"] {
            #expect(CITimeFormat.parse(text) == nil, "\(text)")
        }
        #expect(CITimeFormat.parse("0001-01-01T00:00:05Z") != nil)
        #expect(CITimeFormat.parse("2024-01-01T00:00:00+14:00") != nil)
    }

    @Test func everyFormattedTimeParsesBackToItself() {
        var generator = SystemRandomNumberGenerator()
        for offsetMinutes in [-720, -330, 0, 345, 480, 840] {
            let format = CITimeFormat(utcOffsetSeconds: offsetMinutes * 60)
            for _ in 0..<500 {
                let time = Timestamp(seconds: Int64.random(in: 0...4_102_444_800, using: &generator))
                let text = format.format(time)
                #expect(text.utf8.count == 24)
                #expect(CITimeFormat.parse(text) == time, "\(text)")
            }
        }
    }

    @Test func idsHaveCIsShape() {
        let job = JobID.generate().rawValue
        let queue = QueueID.generate().rawValue
        #expect(job.count == 33 && job.hasPrefix("j"))
        #expect(QueueID.looksLikeID(queue))
        #expect(!QueueID.looksLikeID("queue-1"))
        #expect(JobID.generate() != JobID.generate())
    }
}

@Suite struct ObjectKeyAndInputSourceTests {
    @Test(arguments: [
        ("", "is empty"), ("/abs/a.mp4", "starts with '/'"), ("a/../b", "'..' segment"), ("../a", "'..' segment"),
        ("a/./b", "'.' segment"), ("a//b", "empty segment"), ("a/", "empty segment"), ("a\u{0}b", "control character"),
        ("a\nb", "control character"), ("out/.mediaqueue-x/a.mp4", "reserved"),
        ("../\u{301}x", "'..' segment"), ("a/\u{0600}/../b", "'..' segment"), (String(repeating: "k", count: 851), "longer than 850"),
    ])
    func keysThatLeaveTheBucketAreRefusedWithTheReason(key: String, reason: String) {
        #expect(throws: ObjectKey.Invalid.self) { try ObjectKey(key) }
        #expect(ObjectKey.problem(key)?.contains(reason) == true, "\(key.debugDescription): \(ObjectKey.problem(key) ?? "accepted")")
    }

    @Test func ordinaryKeysAreAcceptedAndSplitIntoFolderAndFileName() throws {
        let key = try ObjectKey("in/2026 clips/a.b.mp4")
        #expect(key.folder == "in/2026 clips")
        #expect(key.fileName == "a.b.mp4")
        #expect(try ObjectKey("top.mp4").folder == "")
        #expect(try ObjectKey("...mp4").fileName == "...mp4")
    }

    static func input(_ inner: String) -> XMLTree {
        try! XMLDocumentParser.parse("<Input>\(inner)</Input>")
    }

    @Test func anInputIsAnObjectOrAnHTTPURLButNotBoth() throws {
        #expect(try InputSource(Self.input("<Object>in/a.mp4</Object>")) == .object(try ObjectKey("in/a.mp4")))
        #expect(try InputSource(Self.input("<Url>https://media.example.com/a.mp4?sign=x</Url>")) == .url("https://media.example.com/a.mp4?sign=x"))
        #expect(try InputSource(Self.input("<Url>HTTP://user@example.com:8080</Url>")) == .url("HTTP://user@example.com:8080"))
        let refused: [(String, String, String)] = [
            ("", "Input.Object", "is required"),
            ("<Object>a.mp4</Object><Url>https://example.com/a.mp4</Url>", "Input.Url", "together"),
            ("<Url>ftp://example.com/a.mp4</Url>", "Input.Url", "http or https"),
            ("<Url>file:///etc/passwd</Url>", "Input.Url", "http or https"),
            ("<Url>https:///a.mp4</Url>", "Input.Url", "no host"),
            ("<Url>https://example.com/a b.mp4</Url>", "Input.Url", "space"),
            ("<Object>a/../../b</Object>", "Input.Object", "'..' segment"),
        ]
        for (inner, element, message) in refused {
            do {
                _ = try InputSource(Self.input(inner))
                Issue.record("accepted \(inner)")
            } catch {
                #expect(error.element == element, "\(inner)")
                #expect(error.message.contains(message), "\(inner): \(error.message)")
            }
        }
    }
}
