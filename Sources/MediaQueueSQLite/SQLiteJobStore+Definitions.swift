import GRDB
public import MediaQueueCore
import MediaQueueXML

/// Templates and workflows (schema v7).
extension SQLiteJobStore {
    static func migrateV7(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE definitions (
                id TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                bucket TEXT NOT NULL,
                name TEXT NOT NULL,
                label TEXT NOT NULL,
                body TEXT NOT NULL,
                refs TEXT NOT NULL,
                create_time INTEGER NOT NULL,
                update_time INTEGER NOT NULL
            );
            CREATE INDEX definitions_bucket ON definitions (bucket, kind, create_time);
            """)
    }

    public func createDefinition(_ definition: Definition) async throws {
        try await transaction { db in
            try db.execute(
                sql: "INSERT INTO definitions (id, kind, bucket, name, label, body, refs, create_time, update_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: [
                    definition.id, definition.kind.rawValue, definition.bucket, definition.name, definition.label, definition.body.xmlString(),
                    definition.referenceList, definition.createTime.milliseconds, definition.updateTime.milliseconds,
                ]
            )
        }
    }

    public func updateDefinition(_ definition: Definition) async throws {
        try await transaction { db in
            try db.execute(
                sql: "UPDATE definitions SET name = ?, label = ?, body = ?, refs = ?, update_time = ? WHERE id = ? AND kind = ? AND bucket = ?",
                arguments: [
                    definition.name, definition.label, definition.body.xmlString(), definition.referenceList, definition.updateTime.milliseconds,
                    definition.id, definition.kind.rawValue, definition.bucket,
                ]
            )
            guard db.changesCount == 1 else { throw definition.kind.missing(definition.id) }
        }
    }

    public func definitions(_ kind: Definition.Kind, bucket: String) async throws -> [Definition] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM definitions WHERE bucket = ? AND kind = ? ORDER BY create_time, id", arguments: [bucket, kind.rawValue])
                .map(Self.definition)
        }
    }

    public func definition(_ kind: Definition.Kind, id: String) async throws -> Definition? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM definitions WHERE id = ? AND kind = ?", arguments: [id, kind.rawValue]).map(Self.definition)
        }
    }

    public func deleteDefinition(_ kind: Definition.Kind, id: String, bucket: String) async throws {
        try await transaction { db in
            if kind == .template {
                let users = try String.fetchAll(
                    db, sql: "SELECT id FROM definitions WHERE bucket = ? AND kind = 'workflow' AND refs LIKE ?", arguments: [bucket, "%,\(id),%"]
                )
                if !users.isEmpty { throw Definition.Kind.inUse(id, by: users) }
            }
            try db.execute(sql: "DELETE FROM definitions WHERE id = ? AND kind = ? AND bucket = ?", arguments: [id, kind.rawValue, bucket])
            guard db.changesCount == 1 else { throw kind.missing(id) }
        }
    }

    private static func definition(_ row: Row) throws -> Definition {
        Definition(
            id: row["id"], kind: Definition.Kind(rawValue: row["kind"]) ?? .template, bucket: row["bucket"], name: row["name"], label: row["label"],
            body: try XMLDocumentParser.parse(row["body"] as String), references: Definition.references(from: row["refs"]),
            createTime: Timestamp(milliseconds: row["create_time"]), updateTime: Timestamp(milliseconds: row["update_time"])
        )
    }
}
