import MediaQueueCore
import MediaQueueXML
import Testing

@Suite struct TemplateTests {
    func request(_ xml: String) throws -> TemplateRequest {
        try TemplateRequest.parse(try XMLDocumentParser.parse(xml))
    }

    @Test func transcodeParametersAreReadFromTheTopAndOthersFromTheirContainer() throws {
        let transcode = try request("<Request><Tag>Transcode</Tag><Name>hd</Name><Container><Format>mp4</Format></Container><Video><Height>720</Height></Video></Request>")
        #expect(transcode.parameters.name == "Transcode")
        #expect(transcode.parameters.text("Video", "Height") == "720")
        let snapshot = try request("<Request><Tag>Snapshot</Tag><Name>s</Name><Snapshot><Mode>Interval</Mode></Snapshot></Request>")
        #expect(snapshot.parameters.children.map(\.name) == ["Mode"])
        let concat = try request("<Request><Tag>Concat</Tag><Name>c</Name><ConcatTemplate><Index>1</Index></ConcatTemplate></Request>")
        #expect(concat.parameters.name == "ConcatTemplate")
        #expect(throws: CIError.self) { try request("<Request><Tag>Teleport</Tag><Name>x</Name><A/></Request>") }
        #expect(throws: CIError.self) { try request("<Request><Tag>Snapshot</Tag><Snapshot><Mode>Interval</Mode></Snapshot></Request>") }
        #expect(throws: CIError.self) { try request("<Request><Tag>Snapshot</Tag><Name>empty</Name></Request>") }
    }

    @Test func aCustomTemplateIdGivesTheJobItsParametersAndNameOverInlineOnes() async throws {
        let store = MemoryJobStore()
        let parameters = XMLTree("Transcode", children: [XMLTree("Container", children: [XMLTree("Format", text: "mp4")])])
        try await store.createDefinition(Definition(
            id: "tcustom", kind: .template, bucket: "b", name: "mine", label: "Transcode", body: parameters,
            createTime: Timestamp(seconds: 1), updateTime: Timestamp(seconds: 1)
        ))
        let resolver = TemplateResolver(store: store, builtInIDs: ["tbuiltin"])
        var operation = CreateMediaJobsRequest.Operation(
            tag: "Transcode", input: XMLTree("Input"),
            operation: XMLTree("Operation", children: [
                XMLTree("TemplateId", text: "tcustom"),
                XMLTree("Transcode", children: [XMLTree("Container", children: [XMLTree("Format", text: "flv")])]),
            ]),
            jobLevel: 0
        )
        try await resolver.resolve(&operation, bucket: "b")
        #expect(operation.operation.children.map(\.name) == ["TemplateId", "TemplateName", "Transcode"])
        #expect(operation.operation.text("TemplateName") == "mine")
        #expect(operation.operation.text("Transcode", "Container", "Format") == "mp4", "the template wins over inline parameters")

        var builtIn = operation
        builtIn.operation = XMLTree("Operation", children: [XMLTree("TemplateId", text: "tbuiltin")])
        try await resolver.resolve(&builtIn, bucket: "b")
        #expect(builtIn.operation.children.count == 1, "built-in ids are the workers' to resolve")

        var foreign = operation
        await #expect(throws: CIError.self) { try await resolver.resolve(&foreign, bucket: "other") }
        var wrongTag = operation
        wrongTag.tag = "Snapshot"
        await #expect(throws: CIError.self) { try await resolver.resolve(&wrongTag, bucket: "b") }
    }
}
