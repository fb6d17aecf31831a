import MediaQueueCore
import MediaQueueTestSupport
import MediaQueueXML
import Testing

/// Templates and workflows kept by every store: memory, SQLite and PostgreSQL.
@Suite struct DefinitionContractTests {
    func template(_ id: String, bucket: String = "b", name: String = "HD", at seconds: Int64 = 1) -> Definition {
        Definition(
            id: id, kind: .template, bucket: bucket, name: name, label: "Transcode",
            body: XMLTree("Transcode", children: [XMLTree("Container", children: [XMLTree("Format", text: "mp4")])]),
            createTime: Timestamp(seconds: seconds), updateTime: Timestamp(seconds: seconds)
        )
    }

    func workflow(_ id: String, using templates: [String]) -> Definition {
        Definition(
            id: id, kind: .workflow, bucket: "b", name: "flow", label: "Active", body: XMLTree("Topology"), references: templates,
            createTime: Timestamp(seconds: 5), updateTime: Timestamp(seconds: 5)
        )
    }

    @Test(arguments: StoreKind.allCases)
    func definitionsAreKeptPerBucketAndKindInCreationOrder(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        try await store.createDefinition(template("t2", at: 2))
        try await store.createDefinition(template("t1", at: 1))
        try await store.createDefinition(template("t3", bucket: "other"))
        try await store.createDefinition(workflow("w1", using: ["t1"]))

        #expect(try await store.definitions(.template, bucket: "b").map(\.id) == ["t1", "t2"])
        #expect(try await store.definitions(.workflow, bucket: "b").map(\.id) == ["w1"])
        let read = try #require(try await store.definition(.template, id: "t1"))
        #expect(read == template("t1", at: 1), "every field, the XML body included, reads back as written")
        #expect(try await store.definition(.workflow, id: "t1") == nil, "a template is not a workflow")
        #expect(try await store.definition(.workflow, id: "w1")?.references == ["t1"])
    }

    @Test(arguments: StoreKind.allCases)
    func anUpdateReplacesOnlyTheBucketsOwnDefinition(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        try await store.createDefinition(template("t1"))
        var changed = template("t1", name: "FHD")
        changed.updateTime = Timestamp(seconds: 9)
        try await store.updateDefinition(changed)
        #expect(try await store.definition(.template, id: "t1")?.name == "FHD")
        #expect(try await store.definition(.template, id: "t1")?.updateTime == Timestamp(seconds: 9))

        await #expect(throws: CIError.self) { try await store.updateDefinition(template("t1", bucket: "other")) }
        await #expect(throws: CIError.self) { try await store.updateDefinition(template("t404")) }
    }

    @Test(arguments: StoreKind.allCases)
    func aTemplateAWorkflowUsesCannotBeDeleted(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        try await store.createDefinition(template("t1"))
        try await store.createDefinition(template("t10"))
        try await store.createDefinition(workflow("w1", using: ["t1"]))

        do {
            try await store.deleteDefinition(.template, id: "t1", bucket: "b")
            Issue.record("a template in use was deleted")
        } catch let error as CIError {
            #expect(error.code == .resourceInUse)
            #expect(error.message.contains("w1"))
        }
        try await store.deleteDefinition(.template, id: "t10", bucket: "b")  // "t1" is in its id, but no workflow uses it
        await #expect(throws: CIError.self) { try await store.deleteDefinition(.template, id: "t10", bucket: "b") }

        try await store.deleteDefinition(.workflow, id: "w1", bucket: "b")
        try await store.deleteDefinition(.template, id: "t1", bucket: "b")
        #expect(try await store.definitions(.template, bucket: "b").isEmpty)
    }
}
