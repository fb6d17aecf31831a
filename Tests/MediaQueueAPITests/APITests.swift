import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MediaQueueAPI
import MediaQueueCore
import MediaQueueXML
import Testing

@Suite struct SignatureTests {
    /// The service's own failures (a database's answer, a host, a path) were answered to the
    /// client word for word when they came as an `InternalError`; the client now gets the request
    /// id to quote, and the log has the rest.
    @Test func anInternalErrorTellsTheClientNothingButTheRequestID() async throws {
        let fixture = APIFixture(extraRoutes: { router in
            router.get("/:bucket/queue/failing") { _, _ -> Response in
                throw CIError(.internalError, "PostgreSQL: password authentication failed for user \"mediaqueue\" at db.internal:5432")
            }
        })
        try await fixture.test { client in
            let response = try await APIFixture.signed(client, .get, "/queue/failing")
            #expect(response.status == .internalServerError)
            let text = String(buffer: response.body)
            #expect(text.contains("<Code>InternalError</Code>"))
            #expect(!text.contains("password") && !text.contains("db.internal"), "\(text)")
            let id = try #require(response.headers[.init("x-ci-request-id")!])
            #expect(text.contains("see the service log for request \(id)"))
        }
    }

    @Test func aCorrectlySignedRequestIsServedAndEveryResponseHasARequestID() async throws {
        let fixture = APIFixture()
        try await fixture.test { client in
            let response = try await APIFixture.signed(client, .get, "/queue", query: ["state": "All", "pageNumber": "", "pageSize": "", "queueIds": ""])
            #expect(response.status == .ok)
            #expect(response.headers[HTTPField.Name("x-ci-request-id")!]?.isEmpty == false)
        }
    }

    @Test func unsignedMalformedExpiredEarlyWrongAndForeignRequestsAre403WithACIErrorBody() async throws {
        let fixture = APIFixture()
        try await fixture.test { client in
            let unsigned = try await client.execute(uri: "/\(APIFixture.bucket)/queue", method: .get)
            #expect(unsigned.status == .forbidden)
            #expect(unsigned.errorCode == "AccessDenied")
            #expect(unsigned.xml?.text("RequestId") == unsigned.headers[HTTPField.Name("x-ci-request-id")!])

            let malformed = try await client.execute(uri: "/\(APIFixture.bucket)/queue", method: .get, headers: [.authorization: "q-sign-algorithm=md5&q-ak=x"])
            #expect(malformed.status == .forbidden)

            let expired = try await APIFixture.signed(client, .get, "/queue", start: APIFixture.now - 7200, end: APIFixture.now - 3600)
            #expect(expired.status == .forbidden)
            #expect(expired.errorCode == "RequestExpired")

            let early = try await APIFixture.signed(client, .get, "/queue", start: APIFixture.now + 3600, end: APIFixture.now + 7200)
            #expect(early.errorCode == "RequestNotYetValid")

            let wrongKey = try await APIFixture.signed(client, .get, "/queue", key: "not-the-key")
            #expect(wrongKey.status == .forbidden)
            #expect(wrongKey.errorCode == "SignatureDoesNotMatch")

            let unknown = try await APIFixture.signed(client, .get, "/queue", secretID: "AKIDnobody")
            #expect(unknown.errorCode == "InvalidAccessKeyId")

            let foreign = try await APIFixture.signed(client, .get, "/queue", secretID: "AKIDother", key: "other-key")
            #expect(foreign.status == .forbidden)
            #expect(foreign.errorCode == "AccessDenied")
        }
    }

    @Test func aSignatureCoversTheListedParameters() async throws {
        let fixture = APIFixture()
        try await fixture.test { client in
            // Signed for state=Active, sent with state=Paused: the signature no longer matches.
            let authorization = APIFixture.queueListAuthorization(parameters: ["state": "Active"])
            let response = try await client.execute(uri: "/\(APIFixture.bucket)/queue?state=Paused", method: .get, headers: [.authorization: authorization])
            #expect(response.errorCode == "SignatureDoesNotMatch")
        }
    }

    /// The CI middleware leaves paths under `/console/` to the console, unsigned: they never
    /// reach CI's routes, also in an API without the console (where `/console/jobs` matches
    /// `/:bucket/jobs`).
    @Test func aConsolePathNeverReachesCIsRoutesUnsigned() async throws {
        let fixture = APIFixture()
        try await fixture.test { client in
            let created = try await client.execute(uri: "/console/jobs", method: .post, body: ByteBuffer(string: jobRequest()))
            #expect(created.status == .notFound)
            let listed = try await client.execute(uri: "/console/queue", method: .get)
            #expect(listed.status == .notFound)
        }
        #expect(try await fixture.store.jobs(JobQuery(limit: 10)).isEmpty)
    }

    /// A body that is not the Content-MD5 the client signed is refused, on CI's calls as on
    /// object uploads: it was changed on the way.
    @Test func aBodyThatIsNotItsContentMD5IsRefused() async throws {
        let fixture = APIFixture()
        try await fixture.test { client in
            func md5(_ text: String) -> String { Data(Insecure.MD5.hash(data: Data(text.utf8))).base64EncodedString() }
            let body = jobRequest(userData: "sent")
            let changed = try await APIFixture.signed(client, .post, "/jobs", body: body, headers: ["content-md5": md5(jobRequest(userData: "signed"))])
            #expect(changed.status == .badRequest && changed.errorCode == "BadDigest")
            let malformed = try await APIFixture.signed(client, .post, "/jobs", body: body, headers: ["content-md5": "not-a-digest"])
            #expect(malformed.errorCode == "InvalidDigest")
            let intact = try await APIFixture.signed(client, .post, "/jobs", body: body, headers: ["content-md5": md5(body)])
            #expect(intact.status == .ok)
        }
        #expect(try await fixture.store.jobs(JobQuery(limit: 10)).map(\.userData) == ["sent"])
    }

    /// The signing key's own window (q-key-time) is enforced besides the signature's: a key
    /// that leaked cannot sign requests for ever.
    @Test func aSigningKeyPastItsKeyTimeIsRefused() async throws {
        let fixture = APIFixture()
        try await fixture.test { client in
            func signed(keyTime: String) -> String { APIFixture.queueListAuthorization(keyTime: keyTime) }
            let current = try await client.execute(
                uri: "/\(APIFixture.bucket)/queue", method: .get, headers: [.authorization: signed(keyTime: "\(APIFixture.now - 600);\(APIFixture.now + 600)")]
            )
            #expect(current.status == .ok)
            let expired = try await client.execute(
                uri: "/\(APIFixture.bucket)/queue", method: .get, headers: [.authorization: signed(keyTime: "\(APIFixture.now - 7200);\(APIFixture.now - 3600)")]
            )
            #expect(expired.errorCode == "RequestExpired")
            let malformed = try await client.execute(uri: "/\(APIFixture.bucket)/queue", method: .get, headers: [.authorization: signed(keyTime: "soon")])
            #expect(malformed.errorCode == "AccessDenied")
        }
    }

    /// A signed query parameter or header sent twice (a name in any case) is refused: the
    /// signature could cover one copy while the handler reads the other. So is a second Host.
    @Test func aSignedParameterOrHeaderSentTwiceIsRefused() async throws {
        let fixture = APIFixture()
        try await fixture.test { client in
            let authorization = APIFixture.queueListAuthorization(parameters: ["state": "Active"])
            let once = try await client.execute(uri: "/\(APIFixture.bucket)/queue?state=Active", method: .get, headers: [.authorization: authorization])
            #expect(once.status == .ok)
            let twice = try await client.execute(
                uri: "/\(APIFixture.bucket)/queue?STATE=Active&state=Paused", method: .get, headers: [.authorization: authorization]
            )
            #expect(twice.status == .badRequest && twice.errorCode == "InvalidArgument")

            var twoHosts: HTTPFields = [.authorization: authorization]
            twoHosts.append(HTTPField(name: HTTPField.Name("Host")!, value: "localhost"))
            let hosts = try await client.execute(uri: "/\(APIFixture.bucket)/queue?state=Active", method: .get, headers: twoHosts)
            #expect(hosts.status == .badRequest && hosts.errorCode == "InvalidArgument")
        }
    }

    @Test func aPresignedURLCarriesItsSignatureInTheQuery() async throws {
        let fixture = APIFixture()
        try await fixture.test { client in
            func presigned(_ key: String, state: String = "Active") -> String {
                let authorization = TestSigner.authorization(
                    secretID: APIFixture.secretID, secretKey: key, method: "GET", path: "/\(APIFixture.bucket)/queue",
                    headers: ["host": "localhost"], parameters: ["state": "Active"], start: APIFixture.now - 60, end: APIFixture.now + 60
                )
                // The Authorization value's fields, each value percent-encoded, after the request's own parameters.
                let fields = authorization.split(separator: "&").map { pair in
                    let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                    return "\(parts[0])=\((parts.count > 1 ? String(parts[1]) : "").addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)"
                }
                return "/\(APIFixture.bucket)/queue?state=\(state)&" + fields.joined(separator: "&")
            }
            #expect(try await client.execute(uri: presigned(APIFixture.secretKey), method: .get).status == .ok)
            #expect(try await client.execute(uri: presigned("not-the-key"), method: .get).errorCode == "SignatureDoesNotMatch")
            #expect(try await client.execute(uri: presigned(APIFixture.secretKey, state: "Paused"), method: .get).errorCode == "SignatureDoesNotMatch")
            let malformed = try await client.execute(uri: "/\(APIFixture.bucket)/queue?q-sign-algorithm=sha1&q-ak=AKIDtest", method: .get)
            #expect(malformed.errorCode == "AccessDenied")
            #expect(malformed.xml?.text("Message")?.contains("malformed signature in the query: q-sign-time, q-key-time and q-signature are required") == true)
            let twice = try await client.execute(
                uri: presigned(APIFixture.secretKey), method: .get, headers: [.authorization: "q-sign-algorithm=sha1&q-ak=AKIDtest"]
            )
            #expect(twice.xml?.text("Message")?.contains("signed twice") == true)
        }
    }

    @Test func anonymousAccessIsOffUnlessConfigured() async throws {
        try await APIFixture(anonymous: true).test { client in
            let response = try await client.execute(uri: "/\(APIFixture.bucket)/queue", method: .get)
            #expect(response.status == .ok)
        }
    }

    @Test func anonymousRequestsAreServedOnlyToNamesAnotherSiteCannotPointHere() {
        let hosts = AnonymousHosts(suffixes: ["MQ.internal"])
        for allowed in [
            nil, "127.0.0.1", "10.0.0.7:8080", "[::1]:8080", "[fe80::1]", "localhost", "LOCALHOST:80", "app.localhost.", "mq.internal",
            "b-1250000000.mq.internal:8080", "b-1250000000.cos.ap-guangzhou.myqcloud.com",
        ] as [String?] {
            #expect(hosts.allow(allowed), "\(allowed ?? "no Host")")
        }
        for refused in [
            "rebound.example.net", "rebound.example.net:8080", "127.0.0.1.example.net", "localhost.example.net", "1.2.3", "1.2.3.256",
            "01234.1.1.1", "xmq.internal", "mq.internal.example.net", "myqcloud.com.example.net", "rebound.myqcloud.com",
            "a.rebound.ap-guangzhou.myqcloud.com", "", ":8080",
        ] {
            #expect(!hosts.allow(refused), "\(refused)")
        }
        // A page of another site that sends its form or fetch to an allowed name.
        let host = "127.0.0.1:8080"
        #expect(!AnonymousHosts.isCrossSite(origin: nil, fetchSite: nil, authority: host), "curl, an SDK")
        #expect(!AnonymousHosts.isCrossSite(origin: "http://127.0.0.1:8080", fetchSite: "same-origin", authority: host))
        #expect(!AnonymousHosts.isCrossSite(origin: nil, fetchSite: "none", authority: host), "typed into the address bar")
        #expect(AnonymousHosts.isCrossSite(origin: "https://evil.example", fetchSite: nil, authority: host))
        #expect(AnonymousHosts.isCrossSite(origin: "null", fetchSite: nil, authority: host))
        #expect(AnonymousHosts.isCrossSite(origin: nil, fetchSite: "cross-site", authority: host))
        #expect(AnonymousHosts.isCrossSite(origin: nil, fetchSite: "same-site", authority: host))
    }

    @Test func credentialsParseFromTheEnvironmentForm() throws {
        let list = try Credential.parseList("AKID1:key1:a-1,b-2; AKID2:key2:c-3")
        #expect(list.map(\.secretID) == ["AKID1", "AKID2"])
        #expect(list[0].buckets == ["a-1", "b-2"])
        #expect(!list[0].description.contains("key1"), "secrets never printed")
        #expect(throws: CIError.self) { try Credential.parseList("AKID1:key1") }
    }
}

@Suite struct QueueEndpointTests {
    @Test func listingCreatesQueue1AndPagesAndReportsUnknownIDs() async throws {
        let fixture = APIFixture()
        try await fixture.test { client in
            let list = try #require(try await APIFixture.signed(client, .get, "/queue").xml)
            #expect(list.text("TotalCount") == "1")
            #expect(list.text("PageNumber") == "1")
            #expect(list.text("PageSize") == "10")
            let queue = try #require(list["QueueList"])
            #expect(queue.text("Name") == "queue-1")
            #expect(queue.text("State") == "Active")
            #expect(queue.text("MaxConcurrent") == "2")
            let id = try #require(queue.text("QueueId"))

            let byID = try #require(try await APIFixture.signed(client, .get, "/queue", query: ["queueIds": "\(id),pmissing"]).xml)
            #expect(byID.all("QueueList").count == 1)
            #expect(byID["NonExistPIDs"]?.all("QueueID").map(\.text) == ["pmissing"])
            #expect(byID["TotalCount"] == nil)
            let repeated = try #require(try await APIFixture.signed(client, .get, "/queue", query: ["queueIds": "\(id),\(id),\(id)"]).xml)
            #expect(repeated.all("QueueList").count == 1, "an id named twice is answered once")
            let many = (0...10).map { "p\($0)" }.joined(separator: ",")
            let tooMany = try await APIFixture.signed(client, .get, "/queue", query: ["queueIds": many])
            #expect(tooMany.status == .badRequest && tooMany.errorCode == "InvalidArgument", "at most 10 queues at once")

            let paused = try #require(try await APIFixture.signed(client, .get, "/queue", query: ["state": "Paused"]).xml)
            #expect(paused.text("TotalCount") == "0")
            let bad = try await APIFixture.signed(client, .get, "/queue", query: ["pageSize": "many"])
            #expect(bad.status == .badRequest)
        }
    }

    @Test func updatingAQueuePausesItAndSetsItsRule() async throws {
        let fixture = APIFixture()
        try await fixture.test { client in
            let id = try #require(try await APIFixture.signed(client, .get, "/queue").xml?["QueueList"]?.text("QueueId"))
            let body = """
                <Request><Name>queue-1</Name><State>Paused</State><NotifyConfig><State>On</State><Type>Url</Type>
                <Url>http://callback.example/cb</Url><Event>TaskFinish</Event><ResultFormat>JSON</ResultFormat></NotifyConfig></Request>
                """
            let response = try await APIFixture.signed(client, .put, "/queue/\(id)", body: body)
            #expect(response.status == .ok)
            let queue = try #require(response.xml?["Queue"])
            #expect(queue.text("Name") == "queue-1")
            #expect(queue.text("State") == "Paused")
            #expect(queue.text("NotifyConfig", "Url") == "http://callback.example/cb")
            #expect(try await fixture.store.queue(id: QueueID(rawValue: id))?.state == .paused)

            let malformed = try await APIFixture.signed(client, .put, "/queue/\(id)", body: "<Request><State>Sleeping</State></Request>")
            #expect(malformed.status == .badRequest)
            #expect(malformed.errorCode == "InvalidArgument")
            #expect(try await fixture.store.queue(id: QueueID(rawValue: id))?.state == .paused, "nothing stored")
            // The bucket's default queue keeps its name: submissions without a QueueId find it by it.
            let renamed = try await APIFixture.signed(client, .put, "/queue/\(id)", body: "<Request><Name>My-Queue</Name></Request>")
            #expect(renamed.status == .badRequest && renamed.errorCode == "InvalidArgument")

            let unknown = try await APIFixture.signed(client, .put, "/queue/p00000000000000000000000000000000", body: "<Request/>")
            #expect(unknown.status == .notFound)
            #expect(unknown.errorCode == "NoSuchQueue")
        }
    }

    @Test func activatingTheBucketAnswersMediaBucket() async throws {
        try await APIFixture().test { client in
            let response = try #require(try await APIFixture.signed(client, .post, "/mediabucket").xml)
            #expect(response.text("MediaBucket", "Name") == APIFixture.bucket)
        }
    }
}

@Suite struct JobEndpointTests {
    @Test func creatingJobsAnswersJobsDetailAndBadRequestsStoreNothing() async throws {
        let fixture = APIFixture()
        try await fixture.test { client in
            let created = try await APIFixture.signed(client, .post, "/jobs", body: jobRequest(level: 2, userData: "first"))
            #expect(created.status == .ok)
            let detail = try #require(created.xml?["JobsDetail"])
            #expect(detail.text("State") == "Submitted")
            #expect(detail.text("Operation", "JobLevel") == "2")
            #expect(detail.text("Operation", "UserData") == "first")
            #expect(detail.text("StartTime") == "-")

            let badLevel = try await APIFixture.signed(client, .post, "/jobs", body: jobRequest(level: 7))
            #expect(badLevel.status == .badRequest)
            #expect(badLevel.errorCode == "InvalidArgument")
            #expect(badLevel.xml?.text("Message")?.contains("JobLevel") == true)
            let notXML = try await APIFixture.signed(client, .post, "/jobs", body: "<Request><Tag>")
            #expect(notXML.status == .badRequest)
            let unknownTag = try await APIFixture.signed(client, .post, "/jobs", body: "<Request><Tag>Teleport</Tag><Input><Object>a</Object></Input><Operation/></Request>")
            #expect(unknownTag.status == .badRequest)
            let unknownQueue = try await APIFixture.signed(client, .post, "/jobs", body: "<Request><Tag>Snapshot</Tag><QueueId>pnope</QueueId><Input><Object>a</Object></Input><Operation/></Request>")
            #expect(unknownQueue.status == .notFound)
            let otherBucket = "<Request><Tag>Snapshot</Tag><Input><Object>a</Object></Input><Operation><Output><Bucket>other-1250000000</Bucket><Object>o/${Number}.jpg</Object></Output></Operation></Request>"
            let elsewhere = try await APIFixture.signed(client, .post, "/jobs", body: otherBucket)
            #expect(elsewhere.status == .badRequest && elsewhere.xml?.text("Message")?.hasPrefix("Operation.Output.Bucket:") == true, "outputs go to the job's bucket only")
            let ownBucket = otherBucket.replacingOccurrences(of: "other-1250000000", with: APIFixture.bucket)
            #expect(try await APIFixture.signed(client, .post, "/jobs", body: ownBucket).status == .ok)
            #expect(try await fixture.store.jobs(JobQuery(limit: 10)).count == 2)
        }
    }

    @Test func aBodyOverTheLimitIs413() async throws {
        try await APIFixture(maxBodyBytes: 64).test { client in
            let response = try await APIFixture.signed(client, .post, "/jobs", body: jobRequest())
            #expect(response.status == .contentTooLarge)
            #expect(response.errorCode == "EntityTooLarge")
        }
    }

    /// CI's accelerated queue does not exist here: a job sent to it is refused, not run in the
    /// bucket's queue unnoticed; with a QueueId, the named queue wins.
    @Test func aJobForTheSpeedTranscodingQueueIsRefusedUnlessItNamesAQueue() async throws {
        let fixture = APIFixture()
        try await fixture.test { client in
            let speed = jobRequest().replacingOccurrences(of: "<Request>", with: "<Request><QueueType>SpeedTranscoding</QueueType>")
            let refused = try await APIFixture.signed(client, .post, "/jobs", body: speed)
            #expect(refused.status == .badRequest)
            #expect(refused.errorCode == "InvalidArgument")
            #expect(refused.xml?.text("Message")?.contains("no speed-transcoding queue") == true)
            let queueID = try #require(try await APIFixture.signed(client, .post, "/jobs", body: jobRequest()).xml?.text("JobsDetail", "QueueId"))
            let named = speed.replacingOccurrences(of: "<Request>", with: "<Request><QueueId>\(queueID)</QueueId>")
            #expect(try await APIFixture.signed(client, .post, "/jobs", body: named).status == .ok)
        }
    }

    /// A retry of a POST that succeeded gets its jobs even when the checks would now refuse it
    /// (its template or queue since deleted; here its body); a new token still gets the error.
    @Test func aRetryWithTheClientTokenOfAStoredSubmissionGetsItsJobsThoughItIsNowRefused() async throws {
        try await APIFixture().test { client in
            let first = try #require(try await APIFixture.signed(client, .post, "/jobs", body: jobRequest(), headers: ["x-ci-client-token": "t-1"]).xml)
            let id = try #require(first.text("JobsDetail", "JobId"))
            let retry = try await APIFixture.signed(client, .post, "/jobs", body: "<Request><Tag>Nope</Tag></Request>", headers: ["x-ci-client-token": "t-1"])
            #expect(retry.status == .ok)
            #expect(retry.xml?.all("JobsDetail").map { $0.text("JobId") } == [id])
            let fresh = try await APIFixture.signed(client, .post, "/jobs", body: "<Request><Tag>Nope</Tag></Request>", headers: ["x-ci-client-token": "t-2"])
            #expect(fresh.status == .badRequest)
        }
    }

    @Test func aFullQueueRefusesWithAClearError() async throws {
        let fixture = APIFixture()
        try await fixture.test { client in
            for index in 0..<5 { _ = try await APIFixture.signed(client, .post, "/jobs", body: jobRequest(userData: "\(index)")) }
            let refused = try await APIFixture.signed(client, .post, "/jobs", body: jobRequest())
            #expect(refused.status == .badRequest)
            #expect(refused.errorCode == "QueueFull")
        }
    }

    @Test func describingFoundAndMissingJobs() async throws {
        let fixture = APIFixture()
        try await fixture.test { client in
            let first = try #require(try await APIFixture.signed(client, .post, "/jobs", body: jobRequest()).xml?.text("JobsDetail", "JobId"))
            let second = try #require(try await APIFixture.signed(client, .post, "/jobs", body: jobRequest()).xml?.text("JobsDetail", "JobId"))
            let response = try #require(try await APIFixture.signed(client, .get, "/jobs/\(first),jmissing,\(second)").xml)
            #expect(response.all("JobsDetail").compactMap { $0.text("JobId") } == [first, second])
            #expect(response.all("NonExistJobIds").map(\.text) == ["jmissing"])
            let none = try #require(try await APIFixture.signed(client, .get, "/jobs/jmissing").xml)
            #expect(none["JobsDetail"] == nil)
        }
    }

    @Test func listingFiltersAndPagesWithNextToken() async throws {
        let fixture = APIFixture()
        // Jobs made half a second into the second that an endCreationTime names are within it:
        // their times are shown in whole seconds.
        fixture.time.advance(by: .milliseconds(500))
        try await fixture.test { client in
            for index in 0..<5 { _ = try await APIFixture.signed(client, .post, "/jobs", body: jobRequest(userData: "\(index)")) }
            let firstPage = try #require(try await APIFixture.signed(client, .get, "/jobs", query: ["tag": "Snapshot", "size": "2", "nextToken": ""]).xml)
            #expect(firstPage.all("JobsDetail").compactMap { $0.text("Operation", "UserData") } == ["4", "3"])
            let token = try #require(firstPage.text("NextToken"))
            #expect(!token.isEmpty)
            let secondPage = try #require(try await APIFixture.signed(client, .get, "/jobs", query: ["tag": "Snapshot", "size": "2", "nextToken": token]).xml)
            #expect(secondPage.all("JobsDetail").compactMap { $0.text("Operation", "UserData") } == ["2", "1"])
            let ascending = try #require(try await APIFixture.signed(client, .get, "/jobs", query: ["orderByTime": "Asc", "size": "100"]).xml)
            #expect(ascending.all("JobsDetail").compactMap { $0.text("Operation", "UserData") } == ["0", "1", "2", "3", "4"])
            #expect(ascending.text("NextToken") == "")
            let running = try #require(try await APIFixture.signed(client, .get, "/jobs", query: ["states": "Running,Failed"]).xml)
            #expect(running["JobsDetail"] == nil)
            let tooBig = try await APIFixture.signed(client, .get, "/jobs", query: ["size": "101"])
            #expect(tooBig.status == .badRequest)
            let badTime = try await APIFixture.signed(client, .get, "/jobs", query: ["startCreationTime": "yesterday"])
            #expect(badTime.status == .badRequest)
            let window = try #require(try await APIFixture.signed(
                client, .get, "/jobs", query: ["startCreationTime": "2023-11-14T22:13:20+0000", "endCreationTime": "2023-11-14T22:13:20+0000", "size": "100"]
            ).xml)
            #expect(window.all("JobsDetail").count == 5)
            let onObject = try #require(try await APIFixture.signed(client, .get, "/jobs", query: ["inputObject": "in/a.mp4", "size": "100"]).xml)
            #expect(onObject.all("JobsDetail").count == 5)
            let transcoding = try #require(try await APIFixture.signed(client, .get, "/jobs", query: ["queueType": "Transcoding", "size": "100"]).xml)
            #expect(transcoding.all("JobsDetail").count == 5)
            for (name, value) in [
                ("inputObject", "in/a.mp"), ("workflowId", "w\(String(repeating: "0", count: 32))"), ("inventoryTriggerJobId", "b1"),
                ("queueType", "SpeedTranscoding"),
            ] {
                let none = try #require(try await APIFixture.signed(client, .get, "/jobs", query: [name: value]).xml)
                #expect(none["JobsDetail"] == nil, "\(name) filters")
            }
        }
    }

    @Test func cancellingAnswersEmpty200AgainOnARetryAndRefusesFinishedAndUnknownJobs() async throws {
        let fixture = APIFixture()
        try await fixture.test { client in
            let finishedID = try #require(try await APIFixture.signed(client, .post, "/jobs", body: jobRequest()).xml?.text("JobsDetail", "JobId"))
            let now = SystemTimeSource().now
            var finished = try #require(try await fixture.store.claimJobs(owner: "n", now: now, leaseUntil: now + .seconds(60), limit: 1).first)
            #expect(finished.id.rawValue == finishedID)
            finished.state = .success
            _ = try await fixture.store.finish([FinishedJob(job: finished, outbox: [])], owner: "n")

            let id = try #require(try await APIFixture.signed(client, .post, "/jobs", body: jobRequest()).xml?.text("JobsDetail", "JobId"))
            let cancelled = try await APIFixture.signed(client, .put, "/jobs/\(id)", query: ["cancel": ""])
            #expect(cancelled.status == .ok)
            #expect(cancelled.body.readableBytes == 0)
            #expect(try await fixture.store.job(id: JobID(rawValue: id))?.state == .cancel)
            let again = try await APIFixture.signed(client, .put, "/jobs/\(id)", query: ["cancel": ""])
            #expect(again.status == .ok)
            #expect(again.body.readableBytes == 0)
            let ended = try await APIFixture.signed(client, .put, "/jobs/\(finishedID)", query: ["cancel": ""])
            #expect(ended.status == .conflict)
            #expect(ended.errorCode == "InvalidJobState")
            #expect(try await fixture.store.job(id: finished.id)?.state == .success)
            let unknown = try await APIFixture.signed(client, .put, "/jobs/jmissing", query: ["cancel": ""])
            #expect(unknown.status == .notFound)
            #expect(unknown.errorCode == "NoSuchJob")
        }
    }

    @Test func unknownPathsAreCIErrors() async throws {
        try await APIFixture().test { client in
            let response = try await APIFixture.signed(client, .get, "/nothing-here")
            #expect(response.status == .notFound || response.status == .forbidden)
            #expect(response.xml?.name == "Error")
        }
    }
}
