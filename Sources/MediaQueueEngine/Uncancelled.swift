/// Runs `operation` in a task of its own and waits for it: the caller's cancellation does not
/// reach it. For the writes a stopping process must still make after its tasks were cancelled
/// (handing jobs back to their queues): the SQLite store refuses to start a write in a
/// cancelled task, and the jobs would otherwise wait for their leases to end.
func uncancelled<T: Sendable>(_ operation: sending @escaping @isolated(any) () async throws -> T) async throws -> T {
    try await Task(operation: operation).value
}
