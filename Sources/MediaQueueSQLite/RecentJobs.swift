import MediaQueueCore
import Synchronization

/// The jobs this process submitted and has not claimed yet, by sequence number, so a claim does
/// not read back and re-parse the XML of jobs it wrote a moment ago.
///
/// Only the parts of a job that never change after submission are taken from here (id, bucket,
/// queue, tag, level, input, operation, callback, creation time); a claim reads the mutable ones
/// (start time, progress, attempts, cancel request) from the database every time. A job another
/// process submitted, or one evicted from here, is read in full. Bounded: the oldest entries go
/// first, so a large backlog costs at most `limit` jobs of memory.
final class RecentJobs: Sendable {
    private struct State {
        var jobs: [Int64: Job] = [:]
        /// Insertion order, for eviction; `head` is the oldest entry still to look at.
        var order: [Int64] = []
        var head = 0
    }

    private let state = Mutex(State())
    let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    func insert(_ jobs: [Job]) {
        guard limit > 0 else { return }
        state.withLock { state in
            for job in jobs where job.sequence > 0 {
                state.jobs[job.sequence] = job
                state.order.append(job.sequence)
            }
            while state.jobs.count > limit, state.head < state.order.count {
                state.jobs[state.order[state.head]] = nil
                state.head += 1
            }
            // Claimed entries leave holes in `order`: rebuild it from the live entries once the
            // holes outnumber them, so it stays proportional to what is cached.
            if state.order.count - state.head > 2 * state.jobs.count + 1024 {
                state.order = state.order[state.head...].filter { state.jobs[$0] != nil }
                state.head = 0
            }
        }
    }

    /// Entries of the eviction order, live or not (what the bound on memory is about).
    var orderLength: Int { state.withLock { $0.order.count - $0.head } }

    var count: Int { state.withLock { $0.jobs.count } }

    /// Removes and returns the cached jobs among `sequences`.
    func take(_ sequences: [Int64]) -> [Int64: Job] {
        state.withLock { state in
            var found: [Int64: Job] = [:]
            for sequence in sequences {
                if let job = state.jobs.removeValue(forKey: sequence) { found[sequence] = job }
            }
            return found
        }
    }
}
