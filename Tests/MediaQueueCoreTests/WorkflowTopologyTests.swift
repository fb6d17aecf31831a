import MediaQueueCore
import MediaQueueXML
import Testing

@Suite struct WorkflowTopologyTests {
    static func topology(_ dependencies: String, nodes: String, start: String = "<ObjectPrefix>in/</ObjectPrefix>") throws -> WorkflowTopology {
        try WorkflowTopology.parse(try XMLDocumentParser.parse(
            "<Topology><Dependencies>\(dependencies)</Dependencies><Nodes><Start><Type>Start</Type><Input>\(start)</Input></Start>\(nodes)</Nodes></Topology>"
        ))
    }

    static func node(_ name: String, _ type: String) -> String {
        "<\(name)><Type>\(type)</Type><Operation><Output><Object>out/${RunId}/\(name)</Object></Output></Operation></\(name)>"
    }

    static let diamond = (
        "<Start>Transcode_1,Snapshot_1</Start><Transcode_1>Animation_1</Transcode_1><Snapshot_1>End</Snapshot_1><Animation_1>End</Animation_1>",
        node("Transcode_1", "Transcode") + node("Snapshot_1", "Snapshot") + node("Animation_1", "Animation")
    )

    func errorElement(_ body: () throws -> WorkflowTopology) -> String? {
        do {
            _ = try body()
            return nil
        } catch let error as CIError {
            return error.element
        } catch {
            return "\(error)"
        }
    }

    @Test func aGraphFromStartToEndIsOrderedAndItsFirstNodesAreKnown() throws {
        let topology = try Self.topology(Self.diamond.0, nodes: Self.diamond.1)
        #expect(topology.nodes.map(\.name).firstIndex(of: "Animation_1")! > topology.nodes.map(\.name).firstIndex(of: "Transcode_1")!)
        #expect(Set(topology.firstNodes.map(\.name)) == ["Transcode_1", "Snapshot_1"])
        #expect(topology.dependencies["Animation_1"] == ["Transcode_1"])
        #expect(topology.start.objectPrefix == "in/")
    }

    @Test func badGraphsAreRefusedNamingTheNode() {
        let cyclic = "<Start>Transcode_1</Start><Transcode_1>Snapshot_1</Transcode_1><Snapshot_1>Transcode_1,End</Snapshot_1>"
        let nodes = Self.node("Transcode_1", "Transcode") + Self.node("Snapshot_1", "Snapshot")
        let onCycle = errorElement { try Self.topology(cyclic, nodes: nodes) }
        #expect(onCycle == "Topology.Dependencies.Snapshot_1" || onCycle == "Topology.Dependencies.Transcode_1", "\(onCycle ?? "accepted")")
        #expect(errorElement { try Self.topology("<Start>Teleport_1</Start><Teleport_1>End</Teleport_1>", nodes: Self.node("Teleport_1", "Teleport")) }
            == "Topology.Nodes.Teleport_1.Type")
        #expect(errorElement { try Self.topology("<Start>Ghost_1</Start>", nodes: Self.node("Snapshot_1", "Snapshot")) } == "Topology.Dependencies.Start")
        #expect(errorElement { try Self.topology("<Start>Snapshot_1</Start><Snapshot_1>End</Snapshot_1>", nodes: Self.node("Snapshot_1", "Snapshot") + Self.node("Transcode_9", "Transcode")) }
            == "Topology.Nodes.Transcode_9")
        #expect(errorElement { try Self.topology("<Start>Snapshot_1</Start><Snapshot_1>Transcode_1</Snapshot_1><Transcode_1>Snapshot_1</Transcode_1>", nodes: nodes) } != nil)
    }

    /// Every upload to a bucket and every step of a run reads its workflows' graphs again.
    @Test func aGraphOfMoreThanAHundredWorkNodesIsRefused() throws {
        func chain(_ count: Int) -> (String, String) {
            let names = (1...count).map { "Snapshot_\($0)" }
            let edges = zip(["Start"] + names, names + ["End"]).map { "<\($0)>\($1)</\($0)>" }.joined()
            return (edges, names.map { Self.node($0, "Snapshot") }.joined())
        }
        let most = chain(WorkflowTopology.maxNodes)
        #expect(try Self.topology(most.0, nodes: most.1).nodes.count == WorkflowTopology.maxNodes)
        let tooMany = chain(WorkflowTopology.maxNodes + 1)
        #expect(errorElement { try Self.topology(tooMany.0, nodes: tooMany.1) } == "Topology.Nodes")
    }

    @Test func theStartFilterAdmitsByPrefixAndExtension() throws {
        let filtered = try Self.topology(
            "<Start>Snapshot_1</Start><Snapshot_1>End</Snapshot_1>", nodes: Self.node("Snapshot_1", "Snapshot"),
            start: "<ObjectPrefix>in/</ObjectPrefix><ExtFilter><State>On</State><Video>true</Video><Custom>true</Custom><CustomExts>raw/dat</CustomExts></ExtFilter>"
        ).start
        #expect(filtered.admits("in/a.MP4"))
        #expect(filtered.admits("in/x/b.dat"))
        #expect(!filtered.admits("in/c.jpg"))
        #expect(!filtered.admits("out/a.mp4"))
        #expect(!filtered.admits("in/noext"))
    }

    @Test func aRunStartsNodesWhenTheirDependenciesSucceedAndEndsWithItsTasks() throws {
        let topology = try Self.topology(Self.diamond.0, nodes: Self.diamond.1)
        let queue = MediaQueue(bucket: "b", name: "queue-1", createTime: Timestamp(seconds: 0))
        let now = Timestamp(seconds: 10)
        func job(_ node: String) -> Job {
            Job(bucket: "b", queueID: queue.id, tag: topology.node(node)!.type, jobLevel: 0, input: XMLTree("Input"), operation: XMLTree("Operation"), creationTime: now)
        }
        var run = WorkflowRun(bucket: "b", workflowID: "w", workflowName: "flow", object: "in/a.mp4", queueID: queue.id, topology: topology, now: now)
        let (fresh, first) = run.advanced(jobs: [:], topology: topology, now: now)
        #expect(Set(first) == ["Transcode_1", "Snapshot_1"])
        var transcode = job("Transcode_1"), snapshot = job("Snapshot_1")
        run = fresh.started(["Transcode_1": transcode, "Snapshot_1": snapshot])
        let firstTwo = run
        #expect(run.advanced(jobs: [transcode.id: transcode, snapshot.id: snapshot], topology: topology, now: now).ready.isEmpty)

        transcode.state = .success
        let (afterTranscode, next) = run.advanced(jobs: [transcode.id: transcode, snapshot.id: snapshot], topology: topology, now: now)
        #expect(next == ["Animation_1"])
        var animation = job("Animation_1")
        run = afterTranscode.started(["Animation_1": animation])
        snapshot.state = .success
        animation.state = .success
        let (done, none) = run.advanced(jobs: [transcode.id: transcode, snapshot.id: snapshot, animation.id: animation], topology: topology, now: now)
        #expect(none.isEmpty && done.state == .success)
        #expect(done.tasks.map(\.state) == ["Success", "Success", "Success"])

        // A failure ends the run Failed once nothing else runs, and starts nothing more.
        transcode.state = .failed
        snapshot.state = .running
        let (failing, blocked) = firstTwo.advanced(jobs: [transcode.id: transcode, snapshot.id: snapshot], topology: topology, now: now)
        #expect(blocked.isEmpty && failing.state == .running, "the snapshot still runs")
        snapshot.state = .success
        #expect(firstTwo.advanced(jobs: [transcode.id: transcode, snapshot.id: snapshot], topology: topology, now: now).run.state == .failed)
    }

    @Test func aJSONWorkflowFinishListsItsTasksAndHeadersAsArraysEvenWithOne() throws {
        let topology = try Self.topology("<Start>Snapshot_1</Start><Snapshot_1>End</Snapshot_1>", nodes: Self.node("Snapshot_1", "Snapshot"))
        var run = WorkflowRun(bucket: "b", workflowID: "w", workflowName: "flow", object: "in/a.mp4", queueID: QueueID(rawValue: "q"), topology: topology, now: Timestamp(milliseconds: 0))
        run.cosHeaders = [CosHeader(key: "Content-Type", value: "video/mp4")]
        run.tasks[0].state = JobState.success.rawValue
        run.tasks[0].jobID = JobID(rawValue: "j1")
        run.state = .success
        let body = String(decoding: CallbackBody.workflowFinish(run, format: .json, formatting: CIFormatting()).bytes, as: UTF8.self)
        #expect(body.contains(#""Tasks":[{"Type":"Snapshot""#), "spec §5.4: Tasks is an array")
        #expect(body.contains(#""CosHeaders":[{"Key":"Content-Type","Value":"video/mp4"}]"#), "spec §5.4: CosHeaders is an array")
        // Kept with the run as stored.
        let stored = try WorkflowRun(stored: try XMLDocumentParser.parse(run.storedXML.xmlString()), version: 0, sequence: 1)
        #expect(stored.cosHeaders == run.cosHeaders)
    }

    /// CI's WorkflowFinish says `Success` or `Failed` (spec §5.4), and its tasks are the ones that
    /// ran: a cancelled run was announced as `Cancel`, with the nodes it never started as
    /// `Waiting` tasks without a JobId. The run's own description keeps both.
    @Test func aWorkflowFinishOfACancelledRunSaysFailedAndListsOnlyTheTasksThatRan() throws {
        let topology = try Self.topology(
            "<Start>Snapshot_1</Start><Snapshot_1>MediaInfo_1</Snapshot_1><MediaInfo_1>End</MediaInfo_1>",
            nodes: Self.node("Snapshot_1", "Snapshot") + Self.node("MediaInfo_1", "MediaInfo")
        )
        var run = WorkflowRun(bucket: "b", workflowID: "w", workflowName: "flow", object: "in/a.mp4", queueID: QueueID(rawValue: "q"), topology: topology, now: Timestamp(milliseconds: 0))
        run.tasks[0].state = JobState.cancel.rawValue
        run.tasks[0].jobID = JobID(rawValue: "j1")
        run.state = .cancel
        let finish = try XMLDocumentParser.parse(CallbackBody.workflowFinish(run, format: .xml, formatting: CIFormatting()).bytes)
        #expect(finish.text("WorkflowExecution", "State") == "Failed")
        #expect(finish["WorkflowExecution"]?.all("Tasks").map { $0.text("Name") } == ["Snapshot_1"])
        #expect(finish["WorkflowExecution"]?.all("Tasks").first?.text("State") == "Cancel")
        let described = run.execution(CIFormatting(), topology: false)
        #expect(described.text("State") == "Cancel")
        #expect(described.all("Tasks").map { $0.text("State") } == ["Cancel", "Waiting"])
    }

    @Test func anUploadPassesOnItsContentTypeAndMetadataHeadersOnly() {
        let headers = CosHeader.passedOn(from: [
            (name: "Authorization", value: "q-sign…"), (name: "content-type", value: "video/mp4"), (name: "x-cos-meta-Camera", value: "A7"),
            (name: "x-cos-storage-class", value: "STANDARD"), (name: "Content-MD5", value: "…"),
        ])
        #expect(headers == [CosHeader(key: "Content-Type", value: "video/mp4"), CosHeader(key: "x-cos-meta-Camera", value: "A7")])
        #expect(CosHeader.metadataBytes(headers) == "x-cos-meta-Camera".utf8.count + 2, "Content-Type is no user metadata")
        #expect(CosHeader.read(stored: CosHeader.stored(headers)) == headers)
        #expect(CosHeader.stored([]) == "" && CosHeader.read(stored: "").isEmpty)
    }
}
