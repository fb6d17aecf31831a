import Synchronization

extension MemoryJobStore {
    public func createRun(_ run: WorkflowRun, jobs: [Job]) async throws -> WorkflowRun {
        try state.withLock { state throws(CIError) in
            if let origin = run.origin, let existing = state.runs.values.first(where: { $0.origin == origin }) { return existing }
            var stored = run
            if !jobs.isEmpty, case .refused(let error) = store([Submission(idempotencyKey: nil, jobs: jobs)], in: &state).first {
                throw error
            }
            stored.sequence = state.nextRunSequence
            state.nextRunSequence += 1
            state.runs[run.id] = stored
            return stored
        }
    }

    public func updateRun(_ run: WorkflowRun, jobs: [Job], outbox: [OutboxEntry]) async throws -> Bool {
        try state.withLock { state throws(CIError) in
            if state.runUpdateFailures > 0 {
                state.runUpdateFailures -= 1
                throw CIError(.internalError, "the store could not be written")
            }
            guard let stored = state.runs[run.id], stored.version == run.version else { return false }
            if !jobs.isEmpty, case .refused(let error) = store([Submission(idempotencyKey: nil, jobs: jobs)], in: &state).first {
                throw error
            }
            for entry in outbox { state.outbox[entry.id] = entry }
            var updated = run
            updated.version += 1
            updated.sequence = stored.sequence
            state.runs[run.id] = updated
            return true
        }
    }

    public func recordArrival(_ arrival: Arrival) async throws {
        state.withLock { $0.arrivals[arrival.id] = arrival }
    }

    public func removeArrival(id: String) async throws {
        state.withLock { $0.arrivals[id] = nil }
    }

    public func arrivals(before cutoff: Timestamp, after: Arrival?, limit: Int) async throws -> [Arrival] {
        state.withLock { state in
            let later = state.arrivals.values.filter { arrival in
                arrival.time < cutoff && after.map { (arrival.time, arrival.id) > ($0.time, $0.id) } ?? true
            }
            return Array(later.sorted { ($0.time, $0.id) < ($1.time, $1.id) }.prefix(limit))
        }
    }

    public func run(id: String) async throws -> WorkflowRun? {
        state.withLock { $0.runs[id] }
    }

    public func runs(_ query: RunQuery) async throws -> [WorkflowRun] {
        state.withLock { state in
            let ordered = state.runs.values.filter(query.matches).sorted { query.newestFirst ? $0.sequence > $1.sequence : $0.sequence < $1.sequence }
            let after = ordered.filter { run in
                guard let after = query.after else { return true }
                return query.newestFirst ? run.sequence < after : run.sequence > after
            }
            return Array(after.prefix(query.limit))
        }
    }

    public func runningRuns(after sequence: Int64, limit: Int) async throws -> [WorkflowRun] {
        state.withLock { state in
            Array(state.runs.values.filter { $0.state == .running && $0.sequence > sequence }.sorted { $0.sequence < $1.sequence }.prefix(limit))
        }
    }
}
