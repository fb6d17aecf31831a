import Synchronization

extension MemoryJobStore {
    public func createDefinition(_ definition: Definition) async throws {
        try state.withLock { state throws(CIError) in
            guard state.definitions[definition.id] == nil else { throw CIError(.invalidArgument, "the id \(definition.id) is taken") }
            state.definitions[definition.id] = definition
        }
    }

    public func updateDefinition(_ definition: Definition) async throws {
        try state.withLock { state throws(CIError) in
            guard let existing = state.definitions[definition.id], existing.kind == definition.kind, existing.bucket == definition.bucket else {
                throw definition.kind.missing(definition.id)
            }
            state.definitions[definition.id] = definition
        }
    }

    public func definitions(_ kind: Definition.Kind, bucket: String) async throws -> [Definition] {
        state.withLock { state in
            state.definitions.values.filter { $0.kind == kind && $0.bucket == bucket }
                .sorted { ($0.createTime, $0.id) < ($1.createTime, $1.id) }
        }
    }

    public func definition(_ kind: Definition.Kind, id: String) async throws -> Definition? {
        state.withLock { state in state.definitions[id].flatMap { $0.kind == kind ? $0 : nil } }
    }

    public func deleteDefinition(_ kind: Definition.Kind, id: String, bucket: String) async throws {
        try state.withLock { state throws(CIError) in
            guard let existing = state.definitions[id], existing.kind == kind, existing.bucket == bucket else { throw kind.missing(id) }
            let users = state.definitions.values.filter { $0.kind == .workflow && $0.bucket == bucket && $0.references.contains(id) }
            if kind == .template, !users.isEmpty { throw Definition.Kind.inUse(id, by: users.map(\.id)) }
            state.definitions[id] = nil
        }
    }
}
