import Foundation
import Logging
import MediaQueueCore
import MediaQueuePostgres
import MediaQueueTestSupport
import Testing

/// Every write transaction reads `pg_current_xact_id_if_assigned()`, which PostgreSQL 12 and
/// earlier lack: the store refuses such a server once, with an error that says why, rather than
/// failing every write.
@Suite struct PostgresServerVersionTests {
    @Test func aServerOlderThan13IsRefusedWithAnErrorThatSaysSo() async throws {
        let url = try await TestDatabase.create()
        let name = try #require(URLComponents(string: url)?.path.dropFirst())
        // The only server here is 15: this database answers as 12 would, through a
        // `current_setting` that its search path finds before the built-in one.
        try await TestDatabase.execute([
            "CREATE SCHEMA older",
            """
            CREATE FUNCTION older.current_setting(text) RETURNS text LANGUAGE sql AS
            $$ SELECT CASE WHEN $1 = 'server_version_num' THEN '120022' ELSE pg_catalog.current_setting($1) END $$
            """,
            "ALTER DATABASE \(name) SET search_path = older, pg_catalog, public",
        ], on: url)
        let store = try PostgresJobStore(url: url, logger: Logger(label: "server-version"))

        let error = await #expect(throws: CIError.self) {
            _ = try await store.ensureDefaultQueue(bucket: "b", template: MediaQueue(bucket: "", name: "", createTime: Timestamp(seconds: 1)))
        }
        #expect(error?.message == "MediaQueue needs PostgreSQL 13 or later; the server is version 12")
    }

}
