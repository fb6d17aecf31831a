import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import MediaQueueAPI
import MediaQueueCore
import MediaQueueTestSupport
import MediaQueueXML
import NIOCore
import Synchronization
import Testing
@testable import MediaQueueConsole

/// The console's guards on HummingbirdTesting with the memory store: who may sign in, what each
/// viewer may see, and that no form changes anything without the session's token from this origin.
@Suite struct ConsoleTests {
    static let bucket = "test-1250000000"
    static let other = "other-1250000000"

    struct NoStorage: ObjectStorage {
        func readableFile(bucket: String, key: ObjectKey) -> ReadableFile? { nil }
        func makeStagingFolder(bucket: String, name: String, for key: ObjectKey?) throws(WorkFailure) -> String { "" }
        func publish(_ path: String, bucket: String, as key: ObjectKey) throws(WorkFailure) -> String? { nil }
        func remove(bucket: String, key: ObjectKey) {}
        func removeStagingFolder(_ path: String) {}
        func objectInfo(bucket: String, key: ObjectKey) -> ObjectInfo? { nil }
        func listObjects(bucket: String, _ query: ObjectListQuery) -> ObjectListing { ObjectListing() }
        func displayPrefixes(bucket: String) -> [(path: String, shownAs: String)] { [] }
    }

    /// Hands out each object as a downloaded copy in a folder of its own, as the S3 storage does.
    final class DownloadedCopies: ObjectStorage {
        let folder = NSTemporaryDirectory() + "console-download-" + UUID().uuidString
        let content: String

        init(content: String) throws {
            self.content = content
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }

        func readableFile(bucket: String, key: ObjectKey) -> ReadableFile? {
            FileManager.default.createFile(atPath: folder + "/copy", contents: Data(content.utf8))
            return ReadableFile(path: folder + "/copy", temporaryFolder: folder)
        }
        func makeStagingFolder(bucket: String, name: String, for key: ObjectKey?) throws(WorkFailure) -> String { "" }
        func publish(_ path: String, bucket: String, as key: ObjectKey) throws(WorkFailure) -> String? { nil }
        func remove(bucket: String, key: ObjectKey) {}
        func removeStagingFolder(_ path: String) { try? FileManager.default.removeItem(atPath: path) }
        func objectInfo(bucket: String, key: ObjectKey) -> ObjectInfo? {
            ObjectInfo(key: key.rawValue, size: content.utf8.count, etag: "\"e\"", lastModified: Timestamp(seconds: 0))
        }
        func listObjects(bucket: String, _ query: ObjectListQuery) -> ObjectListing { ObjectListing() }
        func displayPrefixes(bucket: String) -> [(path: String, shownAs: String)] { [] }
    }

    let store = MemoryJobStore()
    let time = ManualTimeSource(Timestamp(seconds: 1_700_000_000))

    func fixture(
        anonymous: Bool = false, storage: any ObjectStorage = NoStorage(), logger: Logger = Logger(label: "console-test")
    ) async throws -> (APIService, MediaQueue) {
        let queue = try await store.ensureDefaultQueue(bucket: Self.bucket, template: MediaQueue(bucket: "", name: "", createTime: time.now))
        _ = try await store.ensureDefaultQueue(bucket: Self.other, template: MediaQueue(bucket: "", name: "", createTime: time.now))
        let credentials = [
            Credential(secretID: "AKIDmine", secretKey: "mine-key", buckets: [Self.bucket]),
            Credential(secretID: "AKIDother", secretKey: "other-key", buckets: [Self.other]),
        ]
        let console = try ConsoleController(
            store: store, storage: storage,
            options: ConsoleOptions(
                credentials: credentials, adminToken: "admin-token", allowAnonymous: anonymous, sessionKey: Array("test key".utf8),
                defaultBucket: Self.bucket, tags: ["Snapshot"]
            ),
            formatting: CIFormatting(), time: time, logger: logger,
            checkRule: { rule, _ throws(CIError) in
                if rule.url.contains("10.1.2.3") { throw CIError(.invalidArgument, "NotifyConfig.Url: a private address", element: "NotifyConfig.Url") }
            }
        )
        let queues = QueueDirectory(store: store) { MediaQueue(bucket: "", name: "", createTime: Timestamp(seconds: 1_700_000_000)) }
        let api = APIService(
            options: APIOptions(credentials: credentials), store: store, factory: SubmissionFactory(queues: queues, workers: WorkerRegistry([])),
            formatting: CIFormatting(), time: time, logger: Logger(label: "console-test"), extraRoutes: { console.addRoutes(to: $0) }
        )
        return (api, queue)
    }

    /// Signs in with a form and returns the session cookie and the page's CSRF token.
    func signIn(_ client: some TestClientProtocol, _ form: String) async throws -> (cookie: String, csrf: String) {
        let response = try await post(client, "/console/login", cookie: nil, form: form)
        #expect(response.status == .seeOther)
        let setCookie = try #require(response.headers[.setCookie])
        #expect(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Strict") && setCookie.contains("Path=/console"))
        let cookie = String(setCookie.split(separator: ";")[0])
        let page = try await client.execute(uri: "/console/b/\(Self.bucket)/queues", method: .get, headers: [.cookie: cookie])
        let html = String(buffer: page.body)
        let marker = #"name="csrf" value=""#
        let start = try #require(html.range(of: marker)).upperBound
        return (cookie, String(html[start...].prefix { $0 != "\"" }))
    }

    /// A form's POST, from the console's own origin unless `origin` says otherwise (nil: none).
    func post(
        _ client: some TestClientProtocol, _ uri: String, cookie: String?, form: String, origin: String? = "http://localhost"
    ) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
        if let cookie { headers[.cookie] = cookie }
        if let origin { headers[.origin] = origin }
        return try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: form))
    }

    @Test func signedOutVisitorsGetTheSignInPageAndChangeNothing() async throws {
        let (api, queue) = try await fixture()
        try await api.makeApplication().test(.router) { client in
            let page = try await client.execute(uri: "/console/b/\(Self.bucket)/queues", method: .get)
            #expect(page.status == .seeOther)
            #expect(page.headers[.location] == "/console/login")
            let pause = try await post(client, "/console/b/\(Self.bucket)/queues/\(queue.id)/state", cookie: nil, form: "state=Paused")
            #expect(pause.status == .unauthorized)
            let wrong = try await post(client, "/console/login", cookie: nil, form: "secretId=AKIDmine&secretKey=guess")
            #expect(wrong.status == .unauthorized)
            #expect(wrong.headers[.setCookie] == nil)
            // Signing in from another site (login CSRF) or from no site at all is refused.
            for origin in ["http://evil.example", "null", nil] as [String?] {
                let forged = try await post(client, "/console/login", cookie: nil, form: "secretId=AKIDmine&secretKey=mine-key", origin: origin)
                #expect(forged.status == .forbidden)
                #expect(forged.headers[.setCookie] == nil)
            }
        }
        #expect(try await store.queue(id: queue.id)?.state == .active)
    }

    /// Guessing at an account's key (or the admin token) was not slowed at all: after five wrong
    /// tries that account waits from that client, even with the right key, 30 s and then twice as
    /// long after each further failure; other accounts sign in meanwhile, and a success clears it.
    @Test func repeatedFailedSignInsMakeThatAccountWait() async throws {
        let (api, _) = try await fixture()
        try await api.makeApplication().test(.router) { client in
            for _ in 0..<5 {
                #expect(try await post(client, "/console/login", cookie: nil, form: "secretId=AKIDmine&secretKey=guess").status == .unauthorized)
            }
            let blocked = try await post(client, "/console/login", cookie: nil, form: "secretId=AKIDmine&secretKey=mine-key")
            #expect(blocked.status == .tooManyRequests)
            #expect(blocked.headers[.retryAfter] == "30")
            #expect(blocked.headers[.setCookie] == nil)
            #expect(String(buffer: blocked.body).contains("Too many failed sign-ins"))
            _ = try await signIn(client, "secretId=AKIDother&secretKey=other-key")

            time.advance(by: .seconds(30))
            #expect(try await post(client, "/console/login", cookie: nil, form: "secretId=AKIDmine&secretKey=guess").status == .unauthorized)
            let longer = try await post(client, "/console/login", cookie: nil, form: "secretId=AKIDmine&secretKey=mine-key")
            #expect(longer.headers[.retryAfter] == "60", "the sixth failure doubles the wait")
            time.advance(by: .seconds(60))
            _ = try await signIn(client, "secretId=AKIDmine&secretKey=mine-key")
            #expect(try await post(client, "/console/login", cookie: nil, form: "secretId=AKIDmine&secretKey=guess").status == .unauthorized, "the count starts again")

            for _ in 0..<5 { _ = try await post(client, "/console/login", cookie: nil, form: "adminToken=guess") }
            #expect(try await post(client, "/console/login", cookie: nil, form: "adminToken=admin-token").status == .tooManyRequests)
        }
    }

    /// Anyone may post a SecretId; logged as it came, a line break in it wrote a log line of the
    /// poster's choosing ("… job cancelled from the console … by=admin").
    @Test func aRefusedSignInsSecretIDIsLoggedEscapedOnOneLine() async throws {
        final class Logged: Sendable { let values = Mutex<[String]>([]) }
        let logged = Logged()
        let logger = Logger.observed("console-test", level: .info) { event in
            if let value = event.metadata?["secret.id"] { logged.values.withLock { $0.append("\(value)") } }
        }
        let (api, _) = try await fixture(logger: logger)
        try await api.makeApplication().test(.router) { client in
            let forged = "AKIDx%0A2026-12-07T00:00:00+0000+info+console:+job+cancelled+by%3Dadmin"
            let refused = try await post(client, "/console/login", cookie: nil, form: "secretId=\(forged)&secretKey=guess")
            #expect(refused.status == .unauthorized)
        }
        let value = try #require(logged.values.withLock { $0.first })
        #expect(!value.contains("\n") && value.hasPrefix("\"AKIDx\\n2026"), "\(value)")
        #expect(!value.contains("by=admin"), "cut at 64 characters")
    }

    /// A flood of failures for other accounts does not free a blocked one: the table forgets the
    /// idle pairs first.
    @Test func aBlockedAccountStaysBlockedWhenTheTableOverflows() {
        let throttle = LoginThrottle(capacity: 10)
        let now = Timestamp(seconds: 1_700_000_000)
        for _ in 0..<5 { throttle.failed(account: "admin", client: "10.0.0.9", now: now) }
        for index in 0..<50 { throttle.failed(account: "AKID\(index)", client: "10.0.0.9", now: now + .seconds(1)) }
        #expect(throttle.wait(account: "admin", client: "10.0.0.9", now: now + .seconds(2)) != nil)
    }

    @Test func aKeySeesOnlyItsOwnBuckets() async throws {
        let (api, _) = try await fixture()
        try await api.makeApplication().test(.router) { client in
            let (cookie, _) = try await signIn(client, "secretId=AKIDmine&secretKey=mine-key")
            let own = try await client.execute(uri: "/console/b/\(Self.bucket)/queues", method: .get, headers: [.cookie: cookie])
            #expect(own.status == .ok)
            #expect(!String(buffer: own.body).contains(Self.other), "the bucket picker lists only the key's buckets")
            let foreign = try await client.execute(uri: "/console/b/\(Self.other)/queues", method: .get, headers: [.cookie: cookie])
            #expect(foreign.status == .forbidden)

            let (admin, _) = try await signIn(client, "adminToken=admin-token")
            let all = try await client.execute(uri: "/console/b/\(Self.other)/queues", method: .get, headers: [.cookie: admin])
            #expect(all.status == .ok)
        }
    }

    @Test func aFormWithoutTheSessionsTokenOrFromAnotherOriginChangesNothing() async throws {
        let (api, queue) = try await fixture()
        let uri = "/console/b/\(Self.bucket)/queues/\(queue.id)/state"
        try await api.makeApplication().test(.router) { client in
            let (cookie, csrf) = try await signIn(client, "secretId=AKIDmine&secretKey=mine-key")
            #expect(try await post(client, uri, cookie: cookie, form: "state=Paused").status == .forbidden)
            #expect(try await post(client, uri, cookie: cookie, form: "state=Paused&csrf=forged").status == .forbidden)
            #expect(try await post(client, uri, cookie: cookie, form: "state=Paused&csrf=\(csrf)", origin: "http://evil.example").status == .forbidden)
            #expect(try await store.queue(id: queue.id)?.state == .active)
            #expect(try await post(client, uri, cookie: cookie, form: "state=Paused&csrf=\(csrf)").status == .seeOther)
            #expect(try await store.queue(id: queue.id)?.state == .paused)
        }
    }

    @Test func theRuleFormRefusesWhatTheAPIRefusesNextToTheField() async throws {
        let (api, queue) = try await fixture()
        let before = queue.notifyConfig
        try await api.makeApplication().test(.router) { client in
            let (cookie, csrf) = try await signIn(client, "secretId=AKIDmine&secretKey=mine-key")
            let uri = "/console/b/\(Self.bucket)/queues/\(queue.id)/rule"
            let scheme = try await post(client, uri, cookie: cookie, form: "csrf=\(csrf)&State=On&Type=Url&Url=ftp%3A%2F%2Fexample.com&Event=TaskFinish")
            #expect(scheme.status == .badRequest)
            #expect(String(buffer: scheme.body).contains(#"<span class="field-error" id="error-Url">NotifyConfig.Url: must be an http or https URL"#))
            let privateAddress = try await post(client, uri, cookie: cookie, form: "csrf=\(csrf)&State=On&Type=Url&Url=http%3A%2F%2F10.1.2.3%2Fcb&Event=TaskFinish")
            #expect(String(buffer: privateAddress.body).contains(#"id="error-Url">NotifyConfig.Url: a private address"#))
            let noEvent = try await post(client, uri, cookie: cookie, form: "csrf=\(csrf)&State=On&Type=Url&Url=https%3A%2F%2Fexample.com%2Fcb")
            #expect(String(buffer: noEvent.body).contains(#"id="error-Event""#))
            #expect(try await store.queue(id: queue.id)?.notifyConfig == before)

            let saved = try await post(
                client, uri, cookie: cookie, form: "csrf=\(csrf)&State=On&Type=Url&Url=https%3A%2F%2Fexample.com%2Fcb&Event=TaskFinish&Event=TaskProgress"
            )
            // Redirected to the queue's page (a reload there posts nothing again), which says so.
            #expect(saved.status == .seeOther)
            let location = try #require(saved.headers[.location])
            #expect(location.hasPrefix("/console/b/\(Self.bucket)/queues/\(queue.id)?"))
            let shown = try await client.execute(uri: location, method: .get, headers: [.cookie: cookie])
            #expect(String(buffer: shown.body).contains("Callback rule saved."))
            let rule = try await store.queue(id: queue.id)?.notifyConfig
            #expect(rule?.url == "https://example.com/cb")
            #expect(rule?.events == [.taskFinish, .taskProgress])
        }
    }

    /// A notice (what an action did) comes only from the console's own redirect: a link with a
    /// text of its own shows nothing.
    @Test func aNoticeIsShownOnlyWhenTheConsoleMadeIt() async throws {
        let (api, queue) = try await fixture()
        try await api.makeApplication().test(.router) { client in
            let (cookie, csrf) = try await signIn(client, "secretId=AKIDmine&secretKey=mine-key")
            let forged = try await client.execute(
                uri: "/console/b/\(Self.bucket)/queues?notice=Session%20expired%3B%20re-enter%20your%20SecretKey&nmac=x", method: .get,
                headers: [.cookie: cookie]
            )
            #expect(forged.status == .ok)
            #expect(!String(buffer: forged.body).contains("Session expired"))

            let pause = try await post(client, "/console/b/\(Self.bucket)/queues/\(queue.id)/state", cookie: cookie, form: "state=Paused&csrf=\(csrf)")
            let location = try #require(pause.headers[.location])
            let shown = try await client.execute(uri: location, method: .get, headers: [.cookie: cookie])
            #expect(String(buffer: shown.body).contains("\(queue.name) is paused."))
        }
    }

    @Test func anonymousModeNeedsNoSignInButItsFormsMustComeFromTheConsole() async throws {
        let (api, queue) = try await fixture(anonymous: true)
        let uri = "/console/b/\(Self.bucket)/queues/\(queue.id)/state"
        try await api.makeApplication().test(.router) { client in
            let page = try await client.execute(uri: "/console/b/\(Self.other)/jobs", method: .get)
            #expect(page.status == .ok)
            // Without a session there is no token: the origin is the whole check, and must be there.
            for origin in ["http://evil.example", "null", nil] as [String?] {
                #expect(try await post(client, uri, cookie: nil, form: "state=Paused", origin: origin).status == .forbidden)
            }
            #expect(try await store.queue(id: queue.id)?.state == .active)
            #expect(try await post(client, uri, cookie: nil, form: "state=Paused").status == .seeOther)
            #expect(try await store.queue(id: queue.id)?.state == .paused)
        }
    }

    @Test func aSessionCookieIsRefusedWhenTamperedWithOrExpired() {
        let sessions = ConsoleSessions(key: Array("k".utf8), lifetime: .seconds(60))
        let now = Timestamp(seconds: 1_700_000_000)
        let cookie = sessions.issue(.key(secretID: "AKIDmine"), secret: "s1", now: now)
        let unchanged: (ConsolePrincipal) -> String? = { _ in "s1" }
        #expect(sessions.verify(cookie, now: now, currentSecret: unchanged) == .key(secretID: "AKIDmine"))
        #expect(sessions.verify(cookie.replacingOccurrences(of: "key:AKIDmine", with: "admin"), now: now, currentSecret: unchanged) == nil)
        #expect(sessions.verify(cookie, now: now + .seconds(61), currentSecret: unchanged) == nil)
        #expect(ConsoleSessions(key: Array("other".utf8), lifetime: .seconds(60)).verify(cookie, now: now, currentSecret: unchanged) == nil)
        // A key given a new SecretKey, or taken out, ends its sessions.
        #expect(sessions.verify(cookie, now: now, currentSecret: { _ in "s2" }) == nil)
        #expect(sessions.verify(cookie, now: now, currentSecret: { _ in nil }) == nil)
        #expect(sessions.csrfToken(for: cookie) != sessions.csrfToken(for: sessions.issue(.key(secretID: "AKIDmine"), secret: "s1", now: now)))
    }

    @Test func formFieldsAreDecodedAsBrowsersEncodeThem() {
        let form = FormData("a=one+two&b=%2Fx%3Fy%3D1&c=&Event=TaskFinish&Event=TaskProgress&d=%E4%B8%AD&e=100%+%zz%4")
        #expect(form["a"] == "one two")
        #expect(form["b"] == "/x?y=1")
        #expect(form["c"] == nil)
        #expect(form.all("Event") == ["TaskFinish", "TaskProgress"])
        #expect(form["d"] == "中")
        #expect(form["e"] == "100% %zz%4", "a % without two hex digits stays, as the URL standard has it")
        #expect("a b/ç?".urlEncoded == "a%20b/%C3%A7%3F")
    }

    @Test func redrivingAllMatchingTakesEveryMatchAndNothingElse() async throws {
        let (api, queue) = try await fixture()
        let now = SystemTimeSource().now
        var entries: [OutboxEntry] = []
        let targets = [("http://a.example/cb", "job"), ("http://a.example/cb", "job"), ("http://a.example/cb", "job"), ("http://b.example/cb", "workflow.finish")]
        for (index, (url, routingKey)) in targets.enumerated() {
            let job = Job(bucket: Self.bucket, queueID: queue.id, tag: "Snapshot", input: XMLTree("Input"), operation: XMLTree("Operation"), creationTime: now)
            _ = try await store.submit([Submission(idempotencyKey: nil, jobs: [job])])
            var claimed = try #require(try await store.claimJobs(owner: "n", now: now, leaseUntil: now + .seconds(60), limit: 1).first)
            claimed.state = .success
            let entry = OutboxEntry(
                jobID: claimed.id, bucket: Self.bucket, target: .url(url), routingKey: routingKey, body: [], contentType: "application/xml",
                nextAttempt: now, createdAt: now + .seconds(index)
            )
            #expect(try await store.finish(claimed, owner: "n", outbox: [entry]))
            try await store.markAttemptFailed(entry.id, error: "HTTP 410 Gone", nextAttempt: nil, leaseEnd: entry.nextAttempt)
            entries.append(entry)
        }
        let ids = entries.map(\.id)
        let runID = entries[3].jobID.rawValue
        try await api.makeApplication().test(.router) { client in
            let (cookie, csrf) = try await signIn(client, "secretId=AKIDmine&secretKey=mine-key")
            let listed = try await client.execute(uri: "/console/b/\(Self.bucket)/callbacks/dead?endpoint=a.example%3A80", method: .get, headers: [.cookie: cookie])
            let html = String(buffer: listed.body)
            #expect(html.contains(ids[0]) && html.contains(ids[1]) && html.contains(ids[2]) && !html.contains(ids[3]))
            // One row's redrive keeps the filters: the page it leads to, and its "Redrive all",
            // are still the filtered ones, not the whole bucket's.
            #expect(html.components(separatedBy: "name=\"endpoint\" value=\"a.example:80\"").count - 1 == 4, "the redrive-all form's and each row's")
            let one = try await post(client, "/console/b/\(Self.bucket)/callbacks/dead/redrive", cookie: cookie, form: "csrf=\(csrf)&id=\(ids[0])&endpoint=a.example%3A80")
            #expect(one.headers[.location]?.contains("endpoint=a.example%3A80") == true, "\(one.headers[.location] ?? "")")
            let redrive = try await post(client, "/console/b/\(Self.bucket)/callbacks/dead/redrive", cookie: cookie, form: "csrf=\(csrf)&endpoint=a.example%3A80")
            #expect(redrive.status == .seeOther)
            #expect(redrive.headers[.location]?.contains("notice=2%20deliveries%20are%20due%20again.") == true)

            // A WorkflowFinish's id is its run's, and it links to the run.
            let all = String(buffer: try await client.execute(uri: "/console/b/\(Self.bucket)/callbacks/dead", method: .get, headers: [.cookie: cookie]).body)
            #expect(all.contains("/console/b/\(Self.bucket)/runs/\(runID)"))
        }
        #expect(try await store.deadOutbox(limit: 10).map(\.id) == [ids[3]])
    }

    /// A snapshot's sprites are listed in a `SpriteOutputFile` inside its `OutputFile`, and each
    /// output downloads from the job's page; a downloaded copy (S3) goes once it was sent.
    @Test func aJobsPageListsItsOutputsAndSpritesAndDownloadsThem() async throws {
        let storage = try DownloadedCopies(content: "sprite bytes")
        let (api, queue) = try await fixture(storage: storage)
        let now = SystemTimeSource().now
        let job = Job(bucket: Self.bucket, queueID: queue.id, tag: "Snapshot", input: XMLTree("Input"), operation: XMLTree("Operation"), creationTime: now)
        _ = try await store.submit([Submission(idempotencyKey: nil, jobs: [job])])
        var ended = try #require(try await store.claimJobs(owner: "n", now: now, leaseUntil: now + .seconds(60), limit: 1).first)
        ended.state = .success
        ended.endTime = now
        ended.mediaResult = XMLTree("MediaResult", children: [XMLTree("OutputFile", children: [
            XMLTree("ObjectName", text: "out/shot-1.jpg"),
            XMLTree("SpriteOutputFile", children: [XMLTree("ObjectName", text: "out/sprite-1.jpg")]),
        ])])
        #expect(try await store.finish(ended, owner: "n", outbox: []))
        try await api.makeApplication().test(.router) { client in
            let (cookie, _) = try await signIn(client, "secretId=AKIDmine&secretKey=mine-key")
            let page = String(buffer: try await client.execute(uri: "/console/b/\(Self.bucket)/jobs/\(job.id)", method: .get, headers: [.cookie: cookie]).body)
            #expect(page.contains("out/shot-1.jpg") && page.contains("out/sprite-1.jpg"))
            let download = try await client.execute(uri: "/console/b/\(Self.bucket)/objects?key=out%2Fsprite-1.jpg", method: .get, headers: [.cookie: cookie])
            #expect(download.status == .ok)
            #expect(String(buffer: download.body) == "sprite bytes")
        }
        #expect(!FileManager.default.fileExists(atPath: storage.folder), "the downloaded copy is removed")
    }

    /// The jobs list's "to" takes in the whole minute it names: a job of 10:30:20 is in "to 10:30".
    @Test func theJobsFilterToKeepsTheJobsOfItsLastMinute() async throws {
        let (api, queue) = try await fixture()
        let created = Timestamp(seconds: 1_700_000_000)  // 20 s into its minute
        let job = Job(bucket: Self.bucket, queueID: queue.id, tag: "Snapshot", input: XMLTree("Input"), operation: XMLTree("Operation"), creationTime: created)
        _ = try await store.submit([Submission(idempotencyKey: nil, jobs: [job])])
        let minute = String(CIFormatting().times.format(created).prefix(16))
        let before = String(CIFormatting().times.format(created - .seconds(60)).prefix(16))
        try await api.makeApplication().test(.router) { client in
            let (cookie, _) = try await signIn(client, "secretId=AKIDmine&secretKey=mine-key")
            func listed(to: String) async throws -> Bool {
                let page = try await client.execute(uri: "/console/b/\(Self.bucket)/jobs?to=\(to)", method: .get, headers: [.cookie: cookie])
                #expect(page.status == .ok)
                return String(buffer: page.body).contains(job.id.rawValue)
            }
            #expect(try await listed(to: minute), "to \(minute)")
            #expect(try await !listed(to: before), "to \(before)")
        }
    }

    @Test func theOverviewCountsJobsByStateAndTheLastHoursEnds() async throws {
        let (api, queue) = try await fixture()
        let now = SystemTimeSource().now
        for index in 0..<2 {
            let job = Job(
                bucket: Self.bucket, queueID: queue.id, tag: "Snapshot", input: XMLTree("Input"), operation: XMLTree("Operation"),
                creationTime: now - .seconds(60 - index)
            )
            _ = try await store.submit([Submission(idempotencyKey: nil, jobs: [job])])
        }
        var ended = try #require(try await store.claimJobs(owner: "n", now: now, leaseUntil: now + .seconds(60), limit: 1).first)
        ended.state = .success
        ended.endTime = now
        #expect(try await store.finish(ended, owner: "n", outbox: []))
        time.advance(by: .seconds(now.seconds - time.now.seconds + 30))
        try await api.makeApplication().test(.router) { client in
            let (cookie, _) = try await signIn(client, "secretId=AKIDmine&secretKey=mine-key")
            let page = try await client.execute(uri: "/console/b/\(Self.bucket)", method: .get, headers: [.cookie: cookie])
            let html = String(buffer: page.body)
            #expect(html.contains(#"id="count-Success">1<"#))
            #expect(html.contains(#"id="count-Submitted">1<"#))
            #expect(html.contains(#"<span id="ended-last-hour">1</span>"#))
            #expect(html.contains("ago)"), "the oldest waiting job's age is shown")
        }
    }

    @Test func theWorkflowsPageShowsEachWorkflowsRunsAndARunItsTasks() async throws {
        let (api, queue) = try await fixture()
        let topology = try WorkflowTopology.parse(try XMLDocumentParser.parse("""
            <Topology><Dependencies><Start>Snapshot_1</Start><Snapshot_1>MediaInfo_1</Snapshot_1><MediaInfo_1>End</MediaInfo_1></Dependencies>
            <Nodes><Start><Type>Start</Type><Input><ObjectPrefix>uploads/</ObjectPrefix></Input></Start>
            <Snapshot_1><Type>Snapshot</Type><Operation><Output><Object>o/${Number}.jpg</Object></Output></Operation></Snapshot_1>
            <MediaInfo_1><Type>MediaInfo</Type><Operation/></MediaInfo_1></Nodes></Topology>
            """))
        try await store.createDefinition(Definition(
            id: "wconsole", kind: .workflow, bucket: Self.bucket, name: "nightly", label: WorkflowState.active, body: topology.xml,
            createTime: time.now, updateTime: time.now
        ))
        let job = Job(
            bucket: Self.bucket, queueID: queue.id, tag: "Snapshot", jobLevel: 0, input: XMLTree("Input"), operation: XMLTree("Operation"), creationTime: time.now
        )
        let run = WorkflowRun(bucket: Self.bucket, workflowID: "wconsole", workflowName: "nightly", object: "uploads/a.mp4", queueID: queue.id, topology: topology, now: time.now)
        let stored = try await store.createRun(run.started(["Snapshot_1": job]), jobs: [job])
        let foreign = try await store.createRun(
            WorkflowRun(bucket: Self.other, workflowID: "wother", workflowName: "theirs", object: "x.mp4", queueID: queue.id, topology: topology, now: time.now),
            jobs: []
        )
        try await api.makeApplication().test(.router) { client in
            let (cookie, _) = try await signIn(client, "secretId=AKIDmine&secretKey=mine-key")
            let list = String(buffer: try await client.execute(uri: "/console/b/\(Self.bucket)/workflows", method: .get, headers: [.cookie: cookie]).body)
            #expect(list.contains("nightly") && list.contains("uploads/") && list.contains("Snapshot_1, MediaInfo_1"))
            #expect(list.contains("data-run-id=\"\(stored.id)\"") && list.contains("Snapshot_1 Submitted, MediaInfo_1 Waiting"))
            let page = try await client.execute(uri: "/console/b/\(Self.bucket)/runs/\(stored.id)", method: .get, headers: [.cookie: cookie])
            let html = String(buffer: page.body)
            #expect(page.status == .ok)
            #expect(html.contains("href=\"/console/b/\(Self.bucket)/jobs/\(job.id)\""), "a task links to its job")
            #expect(html.contains("data-node=\"MediaInfo_1\"") && html.contains("uploads/a.mp4"))
            let theirs = try await client.execute(uri: "/console/b/\(Self.bucket)/runs/\(foreign.id)", method: .get, headers: [.cookie: cookie])
            #expect(theirs.status == .notFound, "another bucket's run is not shown")
        }
    }
}
